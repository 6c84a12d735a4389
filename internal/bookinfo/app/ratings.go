package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"sync"
)

// Ratings is ratings' answer: stars per reviewer.
type Ratings struct {
	ID      int            `json:"id"`
	Ratings map[string]int `json:"ratings"`
}

// ratings is ratings v1 (upstream ratings.js): 5 and 4 stars unless ratings
// for the product were POSTed, which it then keeps in memory, per pod.
type ratings struct {
	mu    sync.Mutex
	added map[int]map[string]int
}

func newRatings() http.Handler {
	rt := &ratings{added: map[int]map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "Ratings is healthy"})
	})
	mux.HandleFunc("GET /ratings/{id...}", rt.get)
	mux.HandleFunc("POST /ratings/{id...}", rt.post)
	return mux
}

// productID parses an id the way upstream's parseInt does: leading digits,
// anything after them ignored.
func productID(s string) (int, bool) {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	if n == 0 {
		return 0, false
	}
	id, err := strconv.Atoi(s[:n])
	return id, err == nil
}

func (rt *ratings) get(w http.ResponseWriter, r *http.Request) {
	id, ok := productID(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "please provide numeric product ID"})
		return
	}
	writeJSON(w, http.StatusOK, rt.lookup(id))
}

func (rt *ratings) post(w http.ResponseWriter, r *http.Request) {
	id, ok := productID(r.PathValue("id"))
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "please provide numeric product ID"})
		return
	}
	var stars map[string]int
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil || json.Unmarshal(body, &stars) != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "please provide valid ratings JSON"})
		return
	}
	rt.mu.Lock()
	rt.added[id] = stars
	rt.mu.Unlock()
	writeJSON(w, http.StatusOK, rt.lookup(id))
}

func (rt *ratings) lookup(id int) Ratings {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if s, ok := rt.added[id]; ok {
		return Ratings{ID: id, Ratings: s}
	}
	return Ratings{ID: id, Ratings: map[string]int{"Reviewer1": 5, "Reviewer2": 4}}
}
