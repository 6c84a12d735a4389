package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// The messages productpage shows (and its API answers) when a call fails.
const (
	DetailsUnavailable        = "Sorry, product details are currently unavailable for this book."
	ReviewsUnavailable        = "Sorry, product reviews are currently unavailable for this book."
	RatingsUnavailableForBook = "Sorry, product ratings are currently unavailable for this book."
)

// callTimeout is upstream's requests timeout for every productpage call.
const callTimeout = 3 * time.Second

// reviewsTries: upstream calls reviews up to twice ("bug introduced explicitly
// for illustration in fault injection task"), so a reviews outage costs a
// productpage request two failed calls.
const reviewsTries = 2

// Product is the one book productpage knows.
type Product struct {
	ID              int    `json:"id"`
	Title           string `json:"title"`
	DescriptionHTML string `json:"descriptionHtml"`
}

var products = []Product{{
	ID:    0,
	Title: "The Comedy of Errors",
	DescriptionHTML: `<a href="https://en.wikipedia.org/wiki/The_Comedy_of_Errors">Wikipedia Summary</a>: ` +
		`The Comedy of Errors is one of <b>William Shakespeare's</b> early plays. It is his shortest and one of his ` +
		`most farcical comedies, with a major part of the humour coming from slapstick and mistaken identity, in ` +
		`addition to puns and word play.`,
}}

type productpage struct {
	env                          Env
	client                       *http.Client
	details, reviews, ratingsURL string
}

func newProductpage(env Env) http.Handler {
	pp := &productpage{
		env:        env,
		client:     &http.Client{Transport: env.outbound(), Timeout: callTimeout},
		details:    env.serviceURL("details", "DETAILS_HOSTNAME") + "/details/",
		reviews:    env.serviceURL("reviews", "REVIEWS_HOSTNAME") + "/reviews/",
		ratingsURL: env.serviceURL("ratings", "RATINGS_HOSTNAME") + "/ratings/",
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", pp.index)
	mux.HandleFunc("GET /index.html", pp.index)
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, "Product page is healthy")
	})
	mux.HandleFunc("POST /login", pp.login)
	mux.HandleFunc("GET /logout", pp.logout)
	mux.HandleFunc("GET /productpage", pp.front)
	mux.HandleFunc("GET /api/v1/products", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, products)
	})
	mux.HandleFunc("GET /api/v1/products/{id}", pp.apiCall(func(r *http.Request, id string) call {
		return pp.getDetails(r.Context(), id, pp.forward(r))
	}))
	mux.HandleFunc("GET /api/v1/products/{id}/reviews", pp.apiCall(func(r *http.Request, id string) call {
		return pp.getReviews(r.Context(), id, pp.forward(r))
	}))
	mux.HandleFunc("GET /api/v1/products/{id}/ratings", pp.apiCall(func(r *http.Request, id string) call {
		return pp.getRatings(r.Context(), id, pp.forward(r))
	}))
	return mux
}

// call is the outcome of one outbound call as upstream reports it: the status
// (the answer's, or 500 when there was none) and a JSON body, the answer's or
// {"error": "Sorry, …"}.
type call struct {
	status int
	body   json.RawMessage
	header http.Header // the answer's headers; nil when there was none
	err    error
}

func (c call) ok() bool { return c.status == http.StatusOK && c.err == nil }

func (pp *productpage) get(ctx context.Context, url string, h http.Header) call {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return call{status: http.StatusInternalServerError, err: err}
	}
	req.Header = h.Clone()
	resp, err := pp.client.Do(req)
	if err != nil {
		return call{status: http.StatusInternalServerError, err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	c := call{status: resp.StatusCode, body: body, header: resp.Header, err: err}
	if err != nil {
		c.status = http.StatusInternalServerError
	} else if c.status == http.StatusOK && !json.Valid(body) {
		c.status, c.err = http.StatusInternalServerError, errors.New("answer is not JSON")
	} else if c.status != http.StatusOK {
		c.err = fmt.Errorf("status %s", resp.Status)
	}
	return c
}

// failed turns an unsuccessful call into upstream's error answer, keeping the
// status the service answered (or 500 for none).
func (pp *productpage) failed(c call, url, msg string) call {
	pp.env.log().Info("call failed", "url", url, "status", c.status, "err", c.err)
	b, _ := json.Marshal(map[string]string{"error": msg})
	return call{status: c.status, body: b, header: c.header, err: c.err}
}

func (pp *productpage) getDetails(ctx context.Context, id string, h http.Header) call {
	u := pp.details + url.PathEscape(id)
	if c := pp.get(ctx, u, h); c.ok() {
		return c
	} else {
		return pp.failed(c, u, DetailsUnavailable)
	}
}

func (pp *productpage) getReviews(ctx context.Context, id string, h http.Header) call {
	u := pp.reviews + url.PathEscape(id)
	var c call
	for range reviewsTries {
		if c = pp.get(ctx, u, h); c.ok() {
			return c
		}
		if ctx.Err() != nil {
			break
		}
	}
	return pp.failed(c, u, ReviewsUnavailable)
}

func (pp *productpage) getRatings(ctx context.Context, id string, h http.Header) call {
	u := pp.ratingsURL + url.PathEscape(id)
	if c := pp.get(ctx, u, h); c.ok() {
		return c
	} else {
		return pp.failed(c, u, RatingsUnavailableForBook)
	}
}

func (pp *productpage) apiCall(do func(*http.Request, string) call) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := do(r, r.PathValue("id"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(c.status)
		_, _ = w.Write(c.body)
	}
}

// sessionCookie holds the signed-in user. Upstream keeps the user in Flask's
// signed session cookie; here the cookie holds the name itself, which is all
// Bookinfo does with it: show it and send it on as end-user.
const sessionCookie = "session"

func (pp *productpage) user(r *http.Request) string {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		return ""
	}
	u, err := url.QueryUnescape(c.Value)
	if err != nil {
		return ""
	}
	return u
}

// forward is the headers productpage sends on: the propagated ones, and
// end-user for a signed-in user (Bookinfo's "route jason to reviews v2").
func (pp *productpage) forward(r *http.Request) http.Header {
	h := forwardHeaders(r.Header)
	if u := pp.user(r); u != "" {
		h.Set("end-user", u)
	}
	return h
}

func (pp *productpage) login(w http.ResponseWriter, r *http.Request) {
	user := r.FormValue("username")
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: url.QueryEscape(user), Path: "/", HttpOnly: true})
	http.Redirect(w, r, referrer(r), http.StatusFound)
}

func (pp *productpage) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	http.Redirect(w, r, referrer(r), http.StatusFound)
}

func referrer(r *http.Request) string {
	if ref := r.Referer(); ref != "" {
		return ref
	}
	return "/productpage"
}

// front is GET /productpage: details, then reviews, then the page. Whatever
// the calls answered, the page is a 200.
func (pp *productpage) front(w http.ResponseWriter, r *http.Request) {
	h := pp.forward(r)
	page := productPage{Product: products[0], User: pp.user(r)}

	d := pp.getDetails(r.Context(), "0", h)
	page.DetailsOK = d.ok()
	if page.DetailsOK {
		page.DetailsOK = json.Unmarshal(d.body, &page.Details) == nil
	}
	if !page.DetailsOK {
		page.DetailsError = DetailsUnavailable
	}
	attribution(w.Header(), d, HeaderDetailsCluster, HeaderDetailsPod)

	rv := pp.getReviews(r.Context(), "0", h)
	page.ReviewsOK = rv.ok()
	if page.ReviewsOK {
		page.ReviewsOK = json.Unmarshal(rv.body, &page.Reviews) == nil
	}
	if !page.ReviewsOK {
		page.ReviewsError = ReviewsUnavailable
	}
	attribution(w.Header(), rv, HeaderReviewsCluster, HeaderReviewsPod)

	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplate.Execute(w, page); err != nil {
		pp.env.log().Info("render productpage", "err", err)
	}
}

// attribution copies who served a successful call into productpage's answer.
func attribution(out http.Header, c call, clusterHeader, podHeader string) {
	if !c.ok() || c.header == nil {
		return
	}
	if v := c.header.Get(HeaderCluster); v != "" {
		out.Set(clusterHeader, v)
	}
	if v := c.header.Get(HeaderPod); v != "" {
		out.Set(podHeader, v)
	}
}

func (pp *productpage) index(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_ = indexTemplate.Execute(w, []struct{ Name, URL string }{
		{"productpage", pp.details}, // upstream lists productpage with details' address too
		{"details", pp.details},
		{"reviews", pp.reviews},
		{"ratings", pp.ratingsURL},
	})
}
