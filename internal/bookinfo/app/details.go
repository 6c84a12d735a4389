package app

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// BookDetails is details' answer for a book (upstream details.rb).
type BookDetails struct {
	ID        int    `json:"id"`
	Author    string `json:"author"`
	Year      int    `json:"year"`
	Type      string `json:"type"`
	Pages     int    `json:"pages"`
	Publisher string `json:"publisher"`
	Language  string `json:"language"`
	ISBN10    string `json:"ISBN-10"`
	ISBN13    string `json:"ISBN-13"`
}

// newDetails is details v1: the same details for every book id, as upstream
// answers when ENABLE_EXTERNAL_BOOK_SERVICE is not set.
func newDetails() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "Details is healthy"})
	})
	// Upstream mounts a handler on /details and takes the last path segment
	// as the id, whatever comes between.
	details := func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(r.URL.Path, "/")
		id, err := strconv.Atoi(parts[len(parts)-1])
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "please provide numeric product id"})
			return
		}
		writeJSON(w, http.StatusOK, BookDetails{
			ID: id, Author: "William Shakespeare", Year: 1595, Type: "paperback", Pages: 200,
			Publisher: "PublisherA", Language: "English", ISBN10: "1234567890", ISBN13: "123-1234567890",
		})
	}
	mux.HandleFunc("/details", details)
	mux.HandleFunc("/details/", details)
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
