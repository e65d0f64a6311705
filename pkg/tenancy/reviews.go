package tenancy

import (
	"context"
	"fmt"
	"sync"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// question is what one access review asks. user "" asks about the
// controller itself (a SelfSubjectAccessReview).
type question struct {
	user                      string
	verb, group, resource, ns string
}

type answer struct {
	allowed bool
	reason  string
	expires time.Time
	// done is closed once the review in flight has answered; nil after.
	done chan struct{}
	err  error
}

// reviews asks the API server access reviews and keeps the answers for a
// while: allowed ones for allowTTL, denied ones for denyTTL, at most max
// of them. A question asked while the same one is in flight waits for
// that review instead of sending another.
type reviews struct {
	c                 client.Client
	allowTTL, denyTTL time.Duration
	max               int
	now               func() time.Time

	mu      sync.Mutex
	answers map[question]*answer
}

func newReviews(c client.Client, allowTTL, denyTTL time.Duration, max int, now func() time.Time) *reviews {
	return &reviews{c: c, allowTTL: allowTTL, denyTTL: denyTTL, max: max, now: now, answers: map[question]*answer{}}
}

// allowed answers q, from the cache when it holds a fresh answer.
func (r *reviews) allowed(ctx context.Context, q question, groups []string) (bool, string, error) {
	r.mu.Lock()
	a, ok := r.answers[q]
	if ok && a.done == nil && r.now().Before(a.expires) {
		r.mu.Unlock()
		return a.allowed, a.reason, nil
	}
	if ok && a.done != nil {
		done := a.done
		r.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return false, "", ctx.Err()
		}
		if a.err != nil {
			return false, "", a.err
		}
		return a.allowed, a.reason, nil
	}
	a = &answer{done: make(chan struct{})}
	r.evict()
	r.answers[q] = a
	r.mu.Unlock()

	allowed, reason, err := r.ask(ctx, q, groups)

	r.mu.Lock()
	a.allowed, a.reason, a.err = allowed, reason, err
	ttl := r.denyTTL
	if allowed {
		ttl = r.allowTTL
	}
	a.expires = r.now().Add(ttl)
	close(a.done)
	a.done = nil
	if err != nil {
		delete(r.answers, q) // ask again next time
	}
	r.mu.Unlock()
	return allowed, reason, err
}

// evict makes room for one more answer: the expired ones go, or if none
// had, the one that expires first. Called with r.mu held.
func (r *reviews) evict() {
	if len(r.answers) < r.max {
		return
	}
	now := r.now()
	var first *question
	var firstAt time.Time
	for q, a := range r.answers {
		if a.done != nil {
			continue // in flight
		}
		if !now.Before(a.expires) {
			delete(r.answers, q)
			continue
		}
		if first == nil || a.expires.Before(firstAt) {
			q := q
			first, firstAt = &q, a.expires
		}
	}
	if len(r.answers) >= r.max && first != nil {
		delete(r.answers, *first)
	}
}

// ask sends the review.
func (r *reviews) ask(ctx context.Context, q question, groups []string) (bool, string, error) {
	attrs := &authorizationv1.ResourceAttributes{Namespace: q.ns, Verb: q.verb, Group: q.group, Resource: q.resource}
	if q.user == "" {
		sar := &authorizationv1.SelfSubjectAccessReview{Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: attrs}}
		if err := r.c.Create(ctx, sar); err != nil {
			return false, "", fmt.Errorf("self access review of %s %s in %q: %w", q.verb, q.resource, q.ns, err)
		}
		return sar.Status.Allowed, sar.Status.Reason, nil
	}
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		ResourceAttributes: attrs, User: q.user, Groups: groups,
	}}
	if err := r.c.Create(ctx, sar); err != nil {
		return false, "", fmt.Errorf("access review of %s for %s %s in %q: %w", q.user, q.verb, q.resource, q.ns, err)
	}
	return sar.Status.Allowed && !sar.Status.Denied, sar.Status.Reason, nil
}
