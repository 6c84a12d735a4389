package load

import (
	"regexp"
	"strings"
	"testing"
)

func TestDegradedMatch(t *testing.T) {
	const sorry = "Sorry, product reviews are currently unavailable for this book."
	for _, tc := range []struct {
		name string
		d    DegradedWhen
		body string
		want bool
	}{
		{"contains", DegradedWhen{BodyContains: "currently unavailable"}, "<p>" + sorry + "</p>", true},
		{"good page", DegradedWhen{BodyContains: "currently unavailable"}, "<p>Reviews</p>", false},
		{"regexp", DegradedWhen{BodyMatches: regexp.MustCompile(`reviews are .* unavailable`)}, sorry, true},
		{"past within", DegradedWhen{BodyContains: "unavailable", Within: 16}, strings.Repeat("x", 16) + sorry, false},
		{"inside within", DegradedWhen{BodyContains: "Sorry", Within: 16}, sorry, true},
	} {
		if got := tc.d.Match([]byte(tc.body)); got != tc.want {
			t.Errorf("%s: Match = %v, want %v", tc.name, got, tc.want)
		}
	}
}
