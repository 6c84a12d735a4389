// Package scenario is the scenario file: the input of every drill. It holds the
// file's types (types.go, whose field docs are the reference and become the JSON
// Schema of `drill schema`), strict decoding with positions (decode.go), the
// defaults drill fills in (defaults.go) and the checks that tie the file together
// (validate.go).
//
// Load and Parse return a Scenario that is decoded, defaulted and valid, or a
// ErrorList of FieldErrors naming every problem at once as FILE:LINE:COL: FIELD:
// message, with a suggestion where one is likely ("did you mean ...?"). Code
// past this package never re-checks a scenario: durations are time.Durations,
// rates are vegeta Rates, names are DNS labels, references resolve.
//
//	s, err := scenario.Load("scenarios/reviews-failover.yaml")
//	var list scenario.ErrorList
//	if errors.As(err, &list) { ... } // one located problem per entry
package scenario
