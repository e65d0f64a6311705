package apiserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

// TestKubernetesCachesReviews counts the reviews sent to the real API
// server: a token and an access question are each reviewed once per TTL.
func TestKubernetesCachesReviews(t *testing.T) {
	ten := newTenant(t)
	direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	var tokenReviews, accessReviews atomic.Int32
	c := interceptor.NewClient(direct, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			switch o.(type) {
			case *authenticationv1.TokenReview:
				tokenReviews.Add(1)
			case *authorizationv1.SubjectAccessReview:
				accessReviews.Add(1)
			}
			return c.Create(ctx, o, opts...)
		},
	})
	now := time.Unix(1700000000, 0)
	k := NewKubernetes(c, 5*time.Second, func() time.Time { return now })
	req, _ := http.NewRequest(http.MethodGet, "/workflow", nil)
	req.Header.Set("Authorization", "Bearer "+ten.readerTok)
	ctx := context.Background()

	var u User
	for i := 0; i < 3; i++ {
		var err error
		if u, err = k.Authenticate(req); err != nil {
			t.Fatal(err)
		}
		if err := k.Authorize(ctx, u, Access{Verb: "list", Namespace: ten.ns}); err != nil {
			t.Fatal(err)
		}
		// A denial is kept as well.
		if err := k.Authorize(ctx, u, Access{Verb: "create", Namespace: ten.ns}); err == nil || asError(err).Status != http.StatusForbidden {
			t.Fatalf("create as the reader: %v, want a 403", err)
		}
	}
	if got := [2]int32{tokenReviews.Load(), accessReviews.Load()}; got != [2]int32{1, 2} {
		t.Errorf("within the TTL: %d token reviews, %d access reviews; want 1, 2", got[0], got[1])
	}
	now = now.Add(5 * time.Second)
	if u, err := k.Authenticate(req); err != nil {
		t.Fatal(err)
	} else if err := k.Authorize(ctx, u, Access{Verb: "list", Namespace: ten.ns}); err != nil {
		t.Fatal(err)
	}
	if got := [2]int32{tokenReviews.Load(), accessReviews.Load()}; got != [2]int32{2, 3} {
		t.Errorf("after the TTL: %d token reviews, %d access reviews; want 2, 3", got[0], got[1])
	}
}

// TestFailedAuthenticationsAreLimited: made-up tokens from one address
// are reviewed until that address's bucket is empty, then answered 429
// without a review; a second later a good token passes again.
func TestFailedAuthenticationsAreLimited(t *testing.T) {
	ten := newTenant(t)
	direct, err := client.NewWithWatch(env.Config, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	var tokenReviews atomic.Int32
	c := interceptor.NewClient(direct, interceptor.Funcs{
		Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
			if _, ok := o.(*authenticationv1.TokenReview); ok {
				tokenReviews.Add(1)
			}
			return c.Create(ctx, o, opts...)
		},
	})
	now := time.Unix(1700000000, 0)
	clock := func() time.Time { return now }
	srv := httptest.NewServer(New(Options{Client: conn.GetClient(), Auth: NewKubernetes(c, 5*time.Second, clock),
		Namespace: ten.ns, RateLimit: 1, Burst: 2, Now: clock}))
	defer srv.Close()
	u := srv.URL + "/workflow"
	send(t, http.MethodGet, u, "made-up-1", "").want(t, http.StatusUnauthorized, http.StatusUnauthorized)
	send(t, http.MethodGet, u, "made-up-2", "").want(t, http.StatusUnauthorized, http.StatusUnauthorized)
	send(t, http.MethodGet, u, "made-up-3", "").want(t, http.StatusTooManyRequests, http.StatusTooManyRequests)
	send(t, http.MethodGet, u, ten.readerTok, "").want(t, http.StatusTooManyRequests, http.StatusTooManyRequests)
	if n := tokenReviews.Load(); n != 2 {
		t.Errorf("%d token reviews, want 2: the third made-up token was reviewed", n)
	}
	now = now.Add(time.Second)
	send(t, http.MethodGet, u, ten.readerTok, "").want(t, http.StatusOK, http.StatusOK)
}
