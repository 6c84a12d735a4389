package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes report.json: the Report, indented, in the schema docs/reports.md
// describes.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Checks and messages quote Envoy cluster names and arrows; keep them readable.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write report.json: %w", err)
	}
	return nil
}
