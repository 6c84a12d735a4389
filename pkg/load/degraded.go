package load

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
)

// DefaultDegradedWithin is how many bytes of a body are searched for a degraded answer
// when DegradedWhen.Within is not set. Bookinfo's productpage, the page drill watches
// most, is a few kilobytes.
const DefaultDegradedWithin = 64 << 10

// maxDegradedWithin caps Within: every in-flight response may hold that much.
const maxDegradedWithin = 16 << 20

// DegradedWhen tells a degraded answer from a good one: an answer that succeeded (2xx)
// but whose body says part of the page failed, as Bookinfo's productpage does with
// "Sorry, product reviews are currently unavailable for this book." when reviews is
// down. An answer is degraded when its body contains BodyContains or matches
// BodyMatches (either one when both are set).
type DegradedWhen struct {
	BodyContains string
	BodyMatches  *regexp.Regexp
	// Within is how many bytes at the start of each body are read and searched
	// (vegeta's MaxBody); a match past it is missed. Default DefaultDegradedWithin.
	Within int64
}

func (d DegradedWhen) validate() error {
	if d.BodyContains == "" && d.BodyMatches == nil {
		return errors.New("degraded matcher: set bodyContains or a regular expression")
	}
	if d.Within < 0 || d.Within > maxDegradedWithin {
		return fmt.Errorf("degraded matcher: within %d bytes must be between 1 and %d", d.Within, maxDegradedWithin)
	}
	return nil
}

// within is the number of body bytes the matcher needs read.
func (d DegradedWhen) within() int64 {
	if d.Within == 0 {
		return DefaultDegradedWithin
	}
	return d.Within
}

// matcher is a DegradedWhen ready for use on every result.
type matcher struct {
	needle []byte
	re     *regexp.Regexp
}

func (d DegradedWhen) matcher() *matcher {
	m := &matcher{re: d.BodyMatches}
	if d.BodyContains != "" {
		m.needle = []byte(d.BodyContains)
	}
	return m
}

// match reports whether body (already cut to within bytes by vegeta) is degraded.
func (m *matcher) match(body []byte) bool {
	if m.needle != nil && bytes.Contains(body, m.needle) {
		return true
	}
	return m.re != nil && m.re.Match(body)
}

// Match reports whether body is a degraded answer as the attack judges it: only its
// first Within bytes are searched. Callers outside an attack (a readiness check
// before load starts) use it so that both agree on what degraded means.
func (d DegradedWhen) Match(body []byte) bool {
	if n := d.within(); int64(len(body)) > n {
		body = body[:n]
	}
	return d.matcher().match(body)
}
