package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
)

// Annotations of a run launched by a step of another run (a rollback).
const (
	// AnnotationParentRun names the run, in the same namespace, whose step
	// launched this one.
	AnnotationParentRun = "stepflow.dev/parent-run"
	// AnnotationLaunchedBy is LaunchedBy of the step that launched the
	// run: a step that finds a run of the name it chose with another
	// value did not make it.
	AnnotationLaunchedBy = "stepflow.dev/launched-by"
)

// LaunchedBy identifies a step of a run across the run's re-creation:
// "RUN-UID/STEP".
func LaunchedBy(parentUID, step string) string { return parentUID + "/" + step }

// ReplayRequest asks for a new run that replays a stored run: its steps
// and its configuration, byte for byte.
type ReplayRequest struct {
	// Source is the run to replay; Stored is its configuration, as
	// Configuration read it.
	Source *v1alpha1.WorkflowRun
	Stored *Stored
	// Name is the new run's name, in the source's namespace.
	Name string
	// Category is the new run's category (ROLLBACK, ...).
	Category string
	// Context is merged over the source's spec.context, key by key.
	Context map[string]any
	// Parent is the run whose step Step launches the new run: it is its
	// creator, and it is named in AnnotationParentRun and
	// AnnotationLaunchedBy. The new run is not owned by it, so it
	// outlives a cleanup of the parent.
	Parent *v1alpha1.WorkflowRun
	Step   string
	// InstanceID, when not 0, is the new run's LabelInstanceID. The
	// caller allocates it (AllocateInstanceID) from the counter the
	// source's id came from, when the source has one (InstanceID), with
	// its own client: the step's identity has no business writing the
	// installation's counter.
	InstanceID int64
}

// Replay builds the launch of a run that replays req.Source without
// touching a cluster: the source's steps (spec.workflowSpec or
// spec.workflowRef, mode and serviceAccountName), its app-id and scope
// labels and their raw annotations, the category asked for, its context
// with req.Context merged over it, and its stored configuration kept
// exactly as a launch keeps it (inline or in a new ConfigMap owned by the
// new run). It fails on a source that was not launched from an
// application, an invalid name or category.
func Replay(req ReplayRequest) (*Launch, error) {
	src := req.Source
	if src == nil || req.Stored == nil || req.Parent == nil {
		return nil, fmt.Errorf("replay: source run, its configuration and the parent run are all needed")
	}
	where := fmt.Sprintf("replaying workflowrun %s/%s", src.Namespace, src.Name)
	if src.Labels[LabelAppID] == "" || src.Labels[LabelScope] == "" {
		return nil, fmt.Errorf("%s: it has no %s and %s labels: it was not launched from an application", where, LabelAppID, LabelScope)
	}
	if errs := validation.IsDNS1123Subdomain(req.Name); len(errs) > 0 {
		return nil, fmt.Errorf("%s: run name %q: %s", where, req.Name, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(req.Category); req.Category == "" || len(errs) > 0 {
		return nil, fmt.Errorf("%s: category %q: want a non-empty label value %s", where, req.Category, strings.Join(errs, "; "))
	}
	runContext, err := mergeContext(src, req.Context)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	sum := sha256.Sum256(req.Stored.Raw)
	run := &v1alpha1.WorkflowRun{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "WorkflowRun"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      req.Name,
			Namespace: src.Namespace,
			Labels: map[string]string{
				LabelAppID:    src.Labels[LabelAppID],
				LabelCategory: req.Category,
				LabelScope:    src.Labels[LabelScope],
			},
			Annotations: map[string]string{
				AnnotationRawAppID:   src.Annotations[AnnotationRawAppID],
				AnnotationRawScope:   src.Annotations[AnnotationRawScope],
				AnnotationSHA256:     hex.EncodeToString(sum[:]),
				AnnotationCreator:    "workflowrun/" + req.Parent.Name,
				AnnotationParentRun:  req.Parent.Name,
				AnnotationLaunchedBy: LaunchedBy(string(req.Parent.UID), req.Step),
			},
		},
		Spec: v1alpha1.WorkflowRunSpec{
			Context:            runContext,
			Mode:               src.Spec.Mode.DeepCopy(),
			WorkflowSpec:       src.Spec.WorkflowSpec.DeepCopy(),
			WorkflowRef:        src.Spec.WorkflowRef,
			ServiceAccountName: src.Spec.ServiceAccountName,
		},
	}
	l := &Launch{Run: run, Config: req.Stored.Config, Scope: src.Annotations[AnnotationRawScope]}
	if req.InstanceID != 0 {
		l.SetInstanceID(req.InstanceID)
	}
	if err := l.keep(req.Stored.Raw); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return l, nil
}

// mergeContext is the source's spec.context with over's keys set over it.
// Numbers keep their exact value.
func mergeContext(src *v1alpha1.WorkflowRun, over map[string]any) (*runtime.RawExtension, error) {
	merged := map[string]any{}
	if src.Spec.Context != nil && len(src.Spec.Context.Raw) > 0 {
		d := json.NewDecoder(bytes.NewReader(src.Spec.Context.Raw))
		d.UseNumber()
		if err := d.Decode(&merged); err != nil {
			return nil, fmt.Errorf("spec.context of the source run is not an object: %w", err)
		}
	}
	for k, v := range over {
		merged[k] = v
	}
	return contextExtension(merged)
}

// CreateIfAbsent creates the launch's run as Create does, unless a run of
// its name exists: then it returns that run and created false, and
// creates the ConfigMap the existing run names when it is missing (a
// launch interrupted between its two creates). The caller decides
// whether the existing run is the one it meant to create.
func (l *Launch) CreateIfAbsent(ctx context.Context, c client.Client) (existing *v1alpha1.WorkflowRun, created bool, err error) {
	err = l.Create(ctx, c)
	if err == nil {
		return l.Run, true, nil
	}
	if !apierrors.IsAlreadyExists(err) || l.Run.Name == "" {
		return nil, false, err
	}
	var got v1alpha1.WorkflowRun
	if err := c.Get(ctx, client.ObjectKeyFromObject(l.Run), &got); err != nil {
		return nil, false, fmt.Errorf("reading the existing workflowrun %s/%s: %w", l.Run.Namespace, l.Run.Name, err)
	}
	name := got.Annotations[AnnotationConfigMap]
	if l.ConfigMap == nil || name != l.ConfigMap.Name || got.Annotations[AnnotationSHA256] != l.Run.Annotations[AnnotationSHA256] {
		return &got, false, nil
	}
	var cm corev1.ConfigMap
	switch err := c.Get(ctx, client.ObjectKey{Namespace: got.Namespace, Name: name}, &cm); {
	case err == nil:
		return &got, false, nil
	case !apierrors.IsNotFound(err):
		return nil, false, fmt.Errorf("workflowrun %s/%s: configuration configmap %s: %w", got.Namespace, got.Name, name, err)
	}
	cm = *l.ConfigMap.DeepCopy()
	cm.OwnerReferences = []metav1.OwnerReference{ownerRef(&got)}
	if err := c.Create(ctx, &cm); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, false, fmt.Errorf("creating configmap %s/%s for the existing workflowrun %s: %w", cm.Namespace, cm.Name, got.Name, err)
	}
	return &got, false, nil
}
