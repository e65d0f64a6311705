package testenv

import (
	"context"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// WaitAllowed waits until the API server c talks to lets user do what
// attrs say. A RoleBinding takes effect in the authorizer a moment after it
// is created; a test that acts at once may be refused, a flake under load.
// It fails the test after 20 seconds.
func WaitAllowed(t testing.TB, c client.Client, user string, attrs authorizationv1.ResourceAttributes) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, ResourceAttributes: &attrs,
		}}
		err := c.Create(context.Background(), review)
		if err == nil && review.Status.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s was not allowed to %s %s %q in namespace %q within 20s (last review: %v, %s)",
				user, attrs.Verb, attrs.Resource, attrs.Name, attrs.Namespace, err, review.Status.Reason)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
