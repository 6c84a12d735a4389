package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// ReviewsAnswer is reviews' answer for a product (upstream LibertyRestEndpoint).
type ReviewsAnswer struct {
	ID string `json:"id"`
	// PodName and ClusterName say which pod served the answer; productpage
	// shows them as "Reviews served by".
	PodName     string   `json:"podname"`
	ClusterName string   `json:"clustername"`
	Reviews     []Review `json:"reviews"`
}

// Review is one review; Rating is absent for reviews v1.
type Review struct {
	Reviewer string  `json:"reviewer"`
	Text     string  `json:"text"`
	Rating   *Rating `json:"rating,omitempty"`
}

// Rating is a review's stars, or the error upstream reports when ratings
// could not be reached.
type Rating struct {
	Stars *int   `json:"stars,omitempty"`
	Color string `json:"color,omitempty"`
	Error string `json:"error,omitempty"`
}

// RatingsUnavailable is the rating error reviews v2 and v3 answer when
// ratings fails.
const RatingsUnavailable = "Ratings service is currently unavailable"

var reviewTexts = [2]struct{ reviewer, text string }{
	{"Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"},
	{"Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."},
}

type reviews struct {
	env     Env
	ratings bool
	color   string
	timeout time.Duration
	client  *http.Client
	url     string
}

// newReviews is reviews v1 (no ratings), v2 (black stars) or v3 (red stars).
// Upstream sets the ratings call's connect and receive timeouts to 10 s for
// black stars and 2.5 s for red: v3 gives up on a slow ratings sooner.
func newReviews(version string, env Env) http.Handler {
	rv := &reviews{env: env, url: env.serviceURL("ratings", "RATINGS_HOSTNAME") + "/ratings/"}
	switch version {
	case "v2":
		rv.ratings, rv.color, rv.timeout = true, "black", 10*time.Second
	case "v3":
		rv.ratings, rv.color, rv.timeout = true, "red", 2500*time.Millisecond
	}
	rv.client = &http.Client{Transport: env.outbound(), Timeout: rv.timeout}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "Reviews is healthy"})
	})
	mux.HandleFunc("GET /reviews/{id}", rv.serve)
	return mux
}

func (rv *reviews) serve(w http.ResponseWriter, r *http.Request) {
	// The JAX-RS endpoint takes an int path parameter: anything else is not
	// a route at all.
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	stars := [2]int{-1, -1}
	if rv.ratings {
		if got, err := rv.fetchRatings(r.Context(), id, r.Header); err != nil {
			rv.env.log().Info("ratings call failed", "url", rv.url, "err", err)
		} else {
			for i, t := range reviewTexts {
				if s, ok := got.Ratings[t.reviewer]; ok {
					stars[i] = s
				}
			}
		}
	}
	ans := ReviewsAnswer{ID: strconv.Itoa(id), PodName: rv.env.Pod, ClusterName: rv.env.Cluster}
	for i, t := range reviewTexts {
		rev := Review{Reviewer: t.reviewer, Text: t.text}
		if rv.ratings {
			if stars[i] >= 0 {
				n := stars[i]
				rev.Rating = &Rating{Stars: &n, Color: rv.color}
			} else {
				rev.Rating = &Rating{Error: RatingsUnavailable}
			}
		}
		ans.Reviews = append(ans.Reviews, rev)
	}
	writeJSON(w, http.StatusOK, ans)
}

func (rv *reviews) fetchRatings(ctx context.Context, id int, in http.Header) (*Ratings, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rv.url+strconv.Itoa(id), nil)
	if err != nil {
		return nil, err
	}
	req.Header = forwardHeaders(in)
	req.Header.Set("Accept", "application/json")
	resp, err := rv.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %s", resp.Status)
	}
	var out Ratings
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("decode ratings: %w", err)
	}
	return &out, nil
}
