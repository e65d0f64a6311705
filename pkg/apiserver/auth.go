package apiserver

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sort"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/util/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// User is who makes a request.
type User struct {
	Name   string
	UID    string
	Groups []string
	Extra  map[string][]string
}

// Access is what a call does: a WorkflowRun verb (get, list, create,
// update) in a namespace.
type Access struct {
	Verb      string
	Namespace string
}

// Authenticator says who sends a request and what they may do.
type Authenticator interface {
	// Authenticate returns the request's user, or an Error with status
	// 401 when it has none.
	Authenticate(r *http.Request) (User, error)
	// Authorize returns nil when u may do a, an Error with status 403
	// when not.
	Authorize(ctx context.Context, u User, a Access) error
}

// Anonymous accepts every request as User{Name: Name} and allows it
// everything: for a server bound to a loopback address only.
type Anonymous struct{ Name string }

var _ Authenticator = Anonymous{}

func (a Anonymous) Authenticate(*http.Request) (User, error) { return User{Name: a.Name}, nil }

func (Anonymous) Authorize(context.Context, User, Access) error { return nil }

// Kubernetes authenticates bearer tokens with TokenReviews and authorizes
// calls with SubjectAccessReviews of workflowruns, sent with its client
// (which needs create on both). Answers are kept for TTL; at most
// maxCached of each.
type Kubernetes struct {
	c   client.Client
	ttl time.Duration
	now func() time.Time

	// The caches (apimachinery's, as kube-apiserver's token cache):
	// least recently used out beyond maxCached, entries expire after ttl.
	tokens  *cache.LRUExpireCache // [sha256.Size]byte -> tokenAnswer
	reviews *cache.LRUExpireCache // string -> reviewAnswer
}

var _ Authenticator = (*Kubernetes)(nil)

type tokenAnswer struct {
	user User
	ok   bool
	why  string
}

type reviewAnswer struct {
	allowed bool
	why     string
}

// maxCached bounds each of Kubernetes' caches.
const maxCached = 4096

// NewKubernetes returns a Kubernetes authenticator that keeps answers for
// ttl, timed by now.
func NewKubernetes(c client.Client, ttl time.Duration, now func() time.Time) *Kubernetes {
	return &Kubernetes{c: c, ttl: ttl, now: now,
		tokens:  cache.NewLRUExpireCacheWithClock(maxCached, clockFunc(now)),
		reviews: cache.NewLRUExpireCacheWithClock(maxCached, clockFunc(now))}
}

// fresh is how long the caches serve an answer: until, not including,
// ttl after it was given (the cache serves an entry at its expiry time).
func (k *Kubernetes) fresh() time.Duration { return k.ttl - time.Nanosecond }

// clockFunc is a now function as the caches' clock.
type clockFunc func() time.Time

func (f clockFunc) Now() time.Time { return f() }

// Authenticate reviews the request's bearer token.
func (k *Kubernetes) Authenticate(r *http.Request) (User, error) {
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || strings.TrimSpace(token) == "" {
		return User{}, errorf(http.StatusUnauthorized, "no bearer token: send Authorization: Bearer TOKEN, a Kubernetes token the API server accepts")
	}
	key := sha256.Sum256([]byte(token)) // the cache holds no tokens
	a, ok := cached[tokenAnswer](k.tokens, key)
	if !ok {
		tr := &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: token}}
		if err := k.c.Create(r.Context(), tr); err != nil {
			return User{}, errorf(http.StatusInternalServerError, "token review: %v", err)
		}
		a = tokenAnswer{ok: tr.Status.Authenticated, why: tr.Status.Error}
		if a.ok {
			u := tr.Status.User
			a.user = User{Name: u.Username, UID: u.UID, Groups: u.Groups, Extra: map[string][]string{}}
			for k, v := range u.Extra {
				a.user.Extra[k] = v
			}
		}
		k.tokens.Add(key, a, k.fresh())
	}
	if !a.ok {
		msg := "the bearer token was not accepted by the API server"
		if a.why != "" {
			msg += ": " + a.why
		}
		return User{}, errorf(http.StatusUnauthorized, "%s", msg)
	}
	return a.user, nil
}

// Authorize asks whether u may a.Verb workflowruns in a.Namespace.
func (k *Kubernetes) Authorize(ctx context.Context, u User, a Access) error {
	groups := append([]string(nil), u.Groups...)
	sort.Strings(groups)
	key := strings.Join([]string{u.Name, u.UID, strings.Join(groups, ","), a.Verb, a.Namespace}, "\x00")
	ans, ok := cached[reviewAnswer](k.reviews, key)
	if !ok {
		extra := map[string]authorizationv1.ExtraValue{}
		for k, v := range u.Extra {
			extra[k] = v
		}
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: u.Name, UID: u.UID, Groups: u.Groups, Extra: extra,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Namespace: a.Namespace, Verb: a.Verb,
				Group: v1alpha1.GroupVersion.Group, Resource: "workflowruns",
			},
		}}
		if err := k.c.Create(ctx, sar); err != nil {
			return errorf(http.StatusInternalServerError, "access review of %s for %s workflowruns in %q: %v", u.Name, a.Verb, a.Namespace, err)
		}
		ans = reviewAnswer{allowed: sar.Status.Allowed && !sar.Status.Denied, why: sar.Status.Reason}
		k.reviews.Add(key, ans, k.fresh())
	}
	if !ans.allowed {
		msg := u.Name + " may not " + a.Verb + " workflowruns." + v1alpha1.GroupVersion.Group + " in namespace " + a.Namespace
		if ans.why != "" {
			msg += ": " + ans.why
		}
		return errorf(http.StatusForbidden, "%s", msg)
	}
	return nil
}

// cached is key's unexpired value in c.
func cached[V any](c *cache.LRUExpireCache, key any) (V, bool) {
	v, ok := c.Get(key)
	if !ok {
		var zero V
		return zero, false
	}
	return v.(V), true
}
