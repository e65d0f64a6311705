package app

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// LabelInstanceID is the label carrying a launched run's numeric instance id.
const LabelInstanceID = "stepflow.dev/instance-id"

// The instance id counter: a ConfigMap of this name, in the namespace the
// caller gives, whose CounterKey holds the last id handed out.
const (
	CounterConfigMap = "stepflow-instance-ids"
	CounterKey       = "last"
)

// maxCounterBackoff caps the wait between two tries of a conflicting
// counter update. Conflicts are retried until ctx ends, never given up on.
const maxCounterBackoff = 200 * time.Millisecond

// maxUnseen bounds the creates of a counter that reads did not find but
// that exists: a race lost a few times, or a client that never sees it.
const maxUnseen = 20

// AllocateInstanceID returns the next numeric id, unique within the
// installation: the counter ConfigMap CounterConfigMap in counterNamespace
// (the system namespace), its CounterKey increased with optimistic
// concurrency. The update carries the resourceVersion it read, so of two
// allocations that read the same value one is refused with a conflict; it
// reads again and retries, with a jittered backoff, until ctx ends. A
// value is never handed out twice, but one can be lost (an update that
// succeeded while its caller gave up), so ids may have gaps.
//
// A missing counter is created, starting above the highest id a run in
// the cluster already carries, so deleting the counter does not make ids
// repeat.
//
// c should read from the API server, not a cache: a cached read of a
// ConfigMap starts an informer over every ConfigMap, and a stale read
// only costs conflicts.
func AllocateInstanceID(ctx context.Context, c client.Client, counterNamespace string) (int64, error) {
	if counterNamespace == "" {
		return 0, fmt.Errorf("allocating an instance id: no namespace for the counter configmap %s", CounterConfigMap)
	}
	key := client.ObjectKey{Namespace: counterNamespace, Name: CounterConfigMap}
	unseen := 0
	for try := 0; ; try++ {
		if try > 0 {
			if err := backoff(ctx, try); err != nil {
				return 0, fmt.Errorf("allocating an instance id from configmap %s: gave up after %d conflicting tries: %w", key, try, err)
			}
		}
		id, err := nextID(ctx, c, key)
		if apierrors.IsAlreadyExists(err) {
			// Another allocation created it first; unless c cannot see
			// it at all (a cache that holds only some ConfigMaps).
			if unseen++; unseen == maxUnseen {
				return 0, fmt.Errorf("allocating an instance id: configmap %s exists but reads of it find nothing %d times: the client reads through a cache that leaves it out; pass one that reads from the API server", key, unseen)
			}
			continue
		}
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("allocating an instance id from configmap %s: %w", key, err)
		}
		return id, nil
	}
}

// nextID makes one try: it reads the counter and writes it back one
// higher, or creates it. A conflict (or a counter created meanwhile) is
// returned as the API's error, for the caller to retry.
func nextID(ctx context.Context, c client.Client, key client.ObjectKey) (int64, error) {
	var cm corev1.ConfigMap
	err := c.Get(ctx, key, &cm)
	if apierrors.IsNotFound(err) {
		last, err := highestInstanceID(ctx, c)
		if err != nil {
			return 0, err
		}
		cm = corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name},
			Data:       map[string]string{CounterKey: strconv.FormatInt(last+1, 10)},
		}
		if err := c.Create(ctx, &cm); err != nil {
			return 0, err
		}
		return last + 1, nil
	}
	if err != nil {
		return 0, err
	}
	last, err := strconv.ParseInt(cm.Data[CounterKey], 10, 64)
	if err != nil || last < 0 {
		return 0, fmt.Errorf("data key %s is %q, not a count", CounterKey, cm.Data[CounterKey])
	}
	cm.Data[CounterKey] = strconv.FormatInt(last+1, 10)
	// Update sends the resourceVersion read above: a write in between
	// makes it a conflict.
	if err := c.Update(ctx, &cm); err != nil {
		return 0, err
	}
	return last + 1, nil
}

// highestInstanceID is the highest LabelInstanceID among the cluster's
// runs, 0 when none has one.
func highestInstanceID(ctx context.Context, c client.Client) (int64, error) {
	var runs metav1.PartialObjectMetadataList
	runs.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind("WorkflowRunList"))
	if err := c.List(ctx, &runs, client.HasLabels{LabelInstanceID}); err != nil {
		return 0, fmt.Errorf("listing workflowruns for the highest %s: %w", LabelInstanceID, err)
	}
	var max int64
	for _, r := range runs.Items {
		if id, err := strconv.ParseInt(r.Labels[LabelInstanceID], 10, 64); err == nil && id > max {
			max = id
		}
	}
	return max, nil
}

// backoff waits before try number try (from 1): a random time up to
// 5ms·2^try, at most maxCounterBackoff, so contenders spread out.
func backoff(ctx context.Context, try int) error {
	ceiling := maxCounterBackoff
	if try < 10 {
		ceiling = min(ceiling, 5*time.Millisecond<<try)
	}
	t := time.NewTimer(rand.N(ceiling) + time.Millisecond)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// RunByInstanceID finds the run with that id (label selector, across
// namespaces or in ns when ns != ""). No such run is the API's not-found
// error (apierrors.IsNotFound); two runs with the id (a label written by
// hand) is an error naming both.
func RunByInstanceID(ctx context.Context, c client.Reader, ns string, id int64) (*v1alpha1.WorkflowRun, error) {
	where := "any namespace"
	opts := []client.ListOption{client.MatchingLabels{LabelInstanceID: strconv.FormatInt(id, 10)}}
	if ns != "" {
		where = "namespace " + ns
		opts = append(opts, client.InNamespace(ns))
	}
	var runs v1alpha1.WorkflowRunList
	if err := c.List(ctx, &runs, opts...); err != nil {
		return nil, fmt.Errorf("listing workflowruns with %s=%d in %s: %w", LabelInstanceID, id, where, err)
	}
	switch len(runs.Items) {
	case 0:
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: v1alpha1.GroupVersion.Group, Resource: "workflowruns"},
			fmt.Sprintf("%s=%d in %s", LabelInstanceID, id, where))
	case 1:
		return &runs.Items[0], nil
	}
	a, b := runs.Items[0], runs.Items[1]
	return nil, fmt.Errorf("instance id %d is carried by %d workflowruns, among them %s/%s and %s/%s: label %s was set by hand", id, len(runs.Items), a.Namespace, a.Name, b.Namespace, b.Name, LabelInstanceID)
}

// SetInstanceID labels the launch's run with id.
func (l *Launch) SetInstanceID(id int64) {
	if l.Run.Labels == nil {
		l.Run.Labels = map[string]string{}
	}
	l.Run.Labels[LabelInstanceID] = strconv.FormatInt(id, 10)
}

// InstanceID is run's LabelInstanceID, and whether it has a valid one.
func InstanceID(run *v1alpha1.WorkflowRun) (int64, bool) {
	id, err := strconv.ParseInt(run.Labels[LabelInstanceID], 10, 64)
	return id, err == nil && id > 0
}
