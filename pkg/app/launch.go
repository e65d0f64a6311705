package app

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/graph"
)

// Labels of a launched run. A rollback looks its target up by them.
const (
	LabelAppID    = "stepflow.dev/app-id"
	LabelCategory = "stepflow.dev/category"
	LabelScope    = "stepflow.dev/scope"
)

// Annotations of a launched run.
const (
	// AnnotationRawAppID and AnnotationRawScope hold the app id and scope
	// as given; they are always set, and are the only place the value is
	// when its label had to be hashed.
	AnnotationRawAppID = "stepflow.dev/app-id"
	AnnotationRawScope = "stepflow.dev/scope"
	// AnnotationCreator is who launched the run.
	AnnotationCreator = "stepflow.dev/creator"
	// AnnotationConfiguration holds the configuration document when it is
	// at most InlineLimit bytes.
	AnnotationConfiguration = "stepflow.dev/configuration"
	// AnnotationConfigMap names the ConfigMap, in the run's namespace, that
	// holds a larger configuration under ConfigMapKey.
	AnnotationConfigMap = "stepflow.dev/configuration-configmap"
	// AnnotationSHA256 is the hex SHA-256 of the configuration document;
	// Configuration refuses a document that does not match it.
	AnnotationSHA256 = "stepflow.dev/configuration-sha256"
)

const (
	// InlineLimit is the largest configuration kept in the run's own
	// annotation. The API server allows 256 KiB of annotations in all, but
	// a run is written on every status change and sent to every watcher,
	// so larger documents go to a ConfigMap instead.
	InlineLimit = 32 << 10
	// MaxConfigurationSize is the largest configuration accepted: the API
	// server's limit on a ConfigMap's data (1 MiB), less room for the key.
	// etcd's own request limit (1.5 MiB) is above it.
	MaxConfigurationSize = 1<<20 - 1<<10
	// ConfigMapKey is the data key of the configuration in its ConfigMap.
	ConfigMapKey = "configuration.yaml"
)

// DefaultStep is the type, and name, of the single step a configuration
// without workflow steps gets.
const DefaultStep = "deploy"

// Request asks for a run of an application configuration.
type Request struct {
	// Configuration is the ApplicationConfiguration document, YAML or
	// JSON. It is stored byte for byte, so a replay sees exactly it.
	Configuration []byte
	// AppID is the application's id. Empty: the configuration's appId
	// annotation. Both set, they must agree.
	AppID string
	// Category is the kind of launch: DEPLOY, ROLLBACK, ... It must be a
	// valid label value.
	Category string
	// Namespace is where the run (and its ConfigMap) is created.
	Namespace string
	// Creator is who launches, recorded in an annotation.
	Creator string
	// Context is the run's initial context; its keys override the
	// configuration's global parameters ({{ Global.x }}).
	Context map[string]any
	// Name is the run's name. Empty: generated from the app id.
	Name string
	// InstanceCounterNamespace, when set, is the namespace of the
	// instance id counter (the system namespace): Run allocates the run a
	// numeric id there (AllocateInstanceID) and sets LabelInstanceID. The
	// REST API always sets it; `stepflow launch` leaves it empty, so its
	// runs have no id and are named by namespace/name.
	InstanceCounterNamespace string
	// IDLock, when set, is held while the instance id is allocated:
	// launches from one process (the REST API server) take turns at the
	// counter instead of refusing each other's updates and backing off.
	// Other processes still only conflict.
	IDLock sync.Locker
	// Mode is how the top-level steps are scheduled: StepByStep (the
	// default) or DAG, SREWorks' STEP_BY_STEP and DAG (see ParseMode).
	Mode v1alpha1.WorkflowMode
}

// ParseMode reads a launch's execution mode, in SREWorks' spelling
// (STEP_BY_STEP, DAG) or Stepflow's (StepByStep, DAG); empty is the
// default, StepByStep.
func ParseMode(s string) (v1alpha1.WorkflowMode, error) {
	switch s {
	case "":
		return "", nil
	case "STEP_BY_STEP", string(v1alpha1.WorkflowModeStep):
		return v1alpha1.WorkflowModeStep, nil
	case string(v1alpha1.WorkflowModeDAG):
		return v1alpha1.WorkflowModeDAG, nil
	}
	return "", fmt.Errorf("mode %q: want STEP_BY_STEP or DAG", s)
}

// Launch is what a Request turns into: the run, and the ConfigMap that
// holds the configuration when it is too large for the run (nil when it is
// inline). The ConfigMap's name is set; its owner reference to the run is
// added by Create once the run exists.
type Launch struct {
	Run       *v1alpha1.WorkflowRun
	ConfigMap *corev1.ConfigMap
	// Config is the parsed configuration, placeholders not resolved.
	Config *ApplicationConfiguration
	// Scope is the target scope, unhashed.
	Scope string
}

// Build turns a request into a run without touching a cluster. It fails,
// naming the culprit, on a malformed configuration, an unresolvable
// {{ Global.x }}, a missing app id or category, or a duplicate step name.
func Build(req Request) (*Launch, error) {
	if len(req.Configuration) > MaxConfigurationSize {
		return nil, fmt.Errorf("application configuration is %d bytes; at most %d fit in a ConfigMap", len(req.Configuration), MaxConfigurationSize)
	}
	ac, err := Parse(req.Configuration)
	if err != nil {
		return nil, err
	}
	appID := req.AppID
	switch ann := ac.Metadata.Annotations[AnnotationAppID]; {
	case appID == "" && ann == "":
		return nil, fmt.Errorf("application configuration %q: no app id: pass one or set metadata.annotations.%s", ac.Metadata.Name, AnnotationAppID)
	case appID == "":
		appID = ann
	case ann != "" && ann != appID:
		return nil, fmt.Errorf("application configuration %q: app id %q differs from its metadata.annotations.%s %q", ac.Metadata.Name, appID, AnnotationAppID, ann)
	}
	if req.Category == "" {
		return nil, fmt.Errorf("no category: pass one such as DEPLOY or ROLLBACK")
	}
	if errs := validation.IsValidLabelValue(req.Category); len(errs) > 0 {
		return nil, fmt.Errorf("category %q: %s", req.Category, strings.Join(errs, "; "))
	}
	if req.Namespace == "" {
		return nil, fmt.Errorf("no namespace to create the run in")
	}
	resolved, err := ac.Resolved(ac.Globals(req.Context))
	if err != nil {
		return nil, fmt.Errorf("application configuration %q: %w", ac.Metadata.Name, err)
	}
	scope, err := targetScope(resolved, req.Namespace)
	if err != nil {
		return nil, fmt.Errorf("application configuration %q: %w", ac.Metadata.Name, err)
	}
	steps, err := runSteps(resolved)
	if err != nil {
		return nil, fmt.Errorf("application configuration %q: %w", ac.Metadata.Name, err)
	}
	// The steps as the controller will order them: an input no step
	// outputs, a dependsOn naming no step or a cycle is the document's
	// error, found before anything is created.
	var mode *v1alpha1.WorkflowExecuteMode
	if req.Mode != "" {
		if _, err := ParseMode(string(req.Mode)); err != nil {
			return nil, err
		}
		mode = &v1alpha1.WorkflowExecuteMode{Steps: req.Mode}
	}
	if _, err := graph.Build(steps, mode); err != nil {
		return nil, fmt.Errorf("application configuration %q: spec.workflow: %w", ac.Metadata.Name, err)
	}
	runContext, err := contextExtension(req.Context)
	if err != nil {
		return nil, err
	}

	sum := sha256.Sum256(req.Configuration)
	run := &v1alpha1.WorkflowRun{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "WorkflowRun"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: req.Namespace,
			Labels: map[string]string{
				LabelAppID:    LabelValue(appID),
				LabelCategory: req.Category,
				LabelScope:    LabelValue(scope),
			},
			Annotations: map[string]string{
				AnnotationRawAppID: appID,
				AnnotationRawScope: scope,
				AnnotationSHA256:   hex.EncodeToString(sum[:]),
			},
		},
		Spec: v1alpha1.WorkflowRunSpec{
			Context:      runContext,
			WorkflowSpec: &v1alpha1.WorkflowSpec{Steps: steps},
			Mode:         mode,
		},
	}
	if req.Creator != "" {
		run.Annotations[AnnotationCreator] = req.Creator
	}
	if req.Name != "" {
		run.Name = req.Name
	} else {
		run.GenerateName = namePrefix(appID, req.Category)
	}
	l := &Launch{Run: run, Config: ac, Scope: scope}
	if err := l.keep(req.Configuration); err != nil {
		return nil, err
	}
	return l, nil
}

// keep stores the configuration document with l.Run, whose labels and
// AnnotationSHA256 are set: in its annotation when it is small, else in a
// new ConfigMap (l.ConfigMap) named after the run.
func (l *Launch) keep(doc []byte) error {
	run := l.Run
	if len(doc) <= InlineLimit {
		run.Annotations[AnnotationConfiguration] = string(doc)
		return nil
	}
	immutable := true
	l.ConfigMap = &corev1.ConfigMap{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{
			Namespace: run.Namespace,
			Labels: map[string]string{
				LabelAppID:    run.Labels[LabelAppID],
				LabelCategory: run.Labels[LabelCategory],
				LabelScope:    run.Labels[LabelScope],
			},
			Annotations: map[string]string{AnnotationSHA256: run.Annotations[AnnotationSHA256]},
		},
		Immutable: &immutable,
		Data:      map[string]string{ConfigMapKey: string(doc)},
	}
	if max := validation.DNS1123SubdomainMaxLength - len(configMapName("")); len(run.Name) > max {
		return fmt.Errorf("run name %q is longer than the %d characters that leave room for its configuration ConfigMap's name", run.Name, max)
	}
	if run.Name != "" {
		l.ConfigMap.Name = configMapName(run.Name)
		run.Annotations[AnnotationConfigMap] = l.ConfigMap.Name
	}
	return nil
}

// Create creates the launch's run, then, for a large configuration, its
// ConfigMap, owned by the run (so it goes when the run goes). A run whose
// ConfigMap cannot be created is deleted again, and the error says so.
// Between the two creates the run names a ConfigMap that does not exist
// yet; Configuration reports that as not found, which a reader retries.
func (l *Launch) Create(ctx context.Context, c client.Client) error {
	run := l.Run
	if l.ConfigMap != nil && run.Name == "" {
		// The ConfigMap is named after the run and the run names it, in an
		// annotation set at create: so the name is picked here, as the
		// API server would for generateName.
		run.Name = run.GenerateName + utilrand.String(5)
		l.ConfigMap.Name = configMapName(run.Name)
		run.Annotations[AnnotationConfigMap] = l.ConfigMap.Name
	}
	if err := c.Create(ctx, run); err != nil {
		return fmt.Errorf("creating workflowrun %s/%s: %w", run.Namespace, runName(run), err)
	}
	if l.ConfigMap == nil {
		return nil
	}
	cm := l.ConfigMap
	cm.OwnerReferences = []metav1.OwnerReference{ownerRef(run)}
	if err := c.Create(ctx, cm); err != nil {
		cerr := fmt.Errorf("creating configmap %s/%s for workflowrun %s: %w", cm.Namespace, cm.Name, run.Name, err)
		if derr := c.Delete(ctx, run); derr != nil && !apierrors.IsNotFound(derr) {
			return fmt.Errorf("%w; deleting the run again failed too: %v", cerr, derr)
		}
		return fmt.Errorf("%w (the run was deleted again)", cerr)
	}
	return nil
}

// Run builds the request's launch and creates it: the one way runs of an
// application are launched (the CLI's launch, the REST API). With
// req.InstanceCounterNamespace the run gets an instance id, allocated
// only once the request is known to be valid; a create that fails after
// it loses that id (ids may have gaps, never repeats).
func Run(ctx context.Context, c client.Client, req Request) (*Launch, error) {
	l, err := Build(req)
	if err != nil {
		return nil, err
	}
	if req.InstanceCounterNamespace != "" {
		if req.IDLock != nil {
			req.IDLock.Lock()
		}
		id, err := AllocateInstanceID(ctx, c, req.InstanceCounterNamespace)
		if req.IDLock != nil {
			req.IDLock.Unlock()
		}
		if err != nil {
			return nil, fmt.Errorf("launching application %s: %w", l.Run.Annotations[AnnotationRawAppID], err)
		}
		l.SetInstanceID(id)
	}
	return l, l.Create(ctx, c)
}

// Stored is a run's configuration as it was launched.
type Stored struct {
	// Raw is the document byte for byte.
	Raw []byte
	// Config is Raw parsed; placeholders are not resolved.
	Config *ApplicationConfiguration
}

// Configuration reads the configuration a run was launched with: its
// AnnotationConfiguration, or the ConfigMap named by AnnotationConfigMap.
// A document that does not match the run's AnnotationSHA256 (when set) is
// refused, so an edited annotation cannot replay something else. A missing
// ConfigMap is returned as the API's not-found error, wrapped.
func Configuration(ctx context.Context, c client.Reader, run *v1alpha1.WorkflowRun) (*Stored, error) {
	var raw string
	where := fmt.Sprintf("workflowrun %s/%s: annotation %s", run.Namespace, run.Name, AnnotationConfiguration)
	if doc, ok := run.Annotations[AnnotationConfiguration]; ok {
		raw = doc
	} else if name := run.Annotations[AnnotationConfigMap]; name != "" {
		var cm corev1.ConfigMap
		if err := c.Get(ctx, client.ObjectKey{Namespace: run.Namespace, Name: name}, &cm); err != nil {
			return nil, fmt.Errorf("workflowrun %s/%s: configuration configmap %s: %w", run.Namespace, run.Name, name, err)
		}
		if doc, ok = cm.Data[ConfigMapKey]; !ok {
			return nil, fmt.Errorf("workflowrun %s/%s: configmap %s has no key %s", run.Namespace, run.Name, name, ConfigMapKey)
		}
		raw = doc
		where = fmt.Sprintf("workflowrun %s/%s: configmap %s", run.Namespace, run.Name, name)
	} else {
		return nil, fmt.Errorf("workflowrun %s/%s has no application configuration: neither annotation %s nor %s is set", run.Namespace, run.Name, AnnotationConfiguration, AnnotationConfigMap)
	}
	if want := run.Annotations[AnnotationSHA256]; want != "" {
		sum := sha256.Sum256([]byte(raw))
		if got := hex.EncodeToString(sum[:]); got != want {
			return nil, fmt.Errorf("%s: the configuration's sha256 is %s, not the %s launched (annotation %s): it was changed after the launch", where, got, want, AnnotationSHA256)
		}
	}
	ac, err := Parse([]byte(raw))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	return &Stored{Raw: []byte(raw), Config: ac}, nil
}

// LabelValue is v when it is a valid label value, else "sha256-" and the
// first 48 hex digits of v's SHA-256 (55 characters, within the 63 a
// label value may have). The raw value is kept in an annotation.
func LabelValue(v string) string {
	if len(validation.IsValidLabelValue(v)) == 0 {
		return v
	}
	sum := sha256.Sum256([]byte(v))
	return "sha256-" + hex.EncodeToString(sum[:])[:48]
}

// targetScope is where the application deploys, the key (with the app id
// and category) that finds a rollback's target:
//
//   - the first topology policy of spec.policies: its namespace (the run's
//     namespace when it names none), followed by ".CLUSTER" for each of its
//     clusters, sorted ("prod.eu-1.us-2");
//   - else the first Namespace scope of a component ("abm-daily");
//   - else the run's namespace.
//
// Namespaces have no dots, so the first dot always ends the namespace.
func targetScope(ac *ApplicationConfiguration, runNamespace string) (string, error) {
	for _, p := range ac.Spec.Policies {
		if p.Type != PolicyTopology {
			continue
		}
		t, err := p.Topology()
		if err != nil {
			return "", err
		}
		ns := t.Namespace
		if ns == "" {
			ns = runNamespace
		}
		clusters := append([]string(nil), t.Clusters...)
		sort.Strings(clusters)
		return strings.Join(append([]string{ns}, clusters...), "."), nil
	}
	for _, c := range ac.Spec.Components {
		for _, s := range c.Scopes {
			if s.ScopeRef.Kind == "Namespace" && s.ScopeRef.Name != "" {
				return s.ScopeRef.Name, nil
			}
		}
	}
	return runNamespace, nil
}

// runSteps are the workflow's steps, unnamed ones named TYPE-INDEX (INDEX
// counts from 1 in spec.workflow.steps), or a single deploy step.
func runSteps(ac *ApplicationConfiguration) ([]v1alpha1.WorkflowStep, error) {
	if ac.Spec.Workflow == nil || len(ac.Spec.Workflow.Steps) == 0 {
		return []v1alpha1.WorkflowStep{{WorkflowStepBase: v1alpha1.WorkflowStepBase{Name: DefaultStep, Type: DefaultStep}}}, nil
	}
	steps := make([]v1alpha1.WorkflowStep, len(ac.Spec.Workflow.Steps))
	seen := map[string]int{}
	for i, s := range ac.Spec.Workflow.Steps {
		if s.Type == "" {
			return nil, fmt.Errorf("spec.workflow.steps[%d] (%q) has no type", i, s.Name)
		}
		s = *s.DeepCopy()
		if s.Name == "" {
			s.Name = fmt.Sprintf("%s-%d", s.Type, i+1)
		}
		if j, dup := seen[s.Name]; dup {
			return nil, fmt.Errorf("spec.workflow.steps[%d]: step name %q is also spec.workflow.steps[%d]'s", i, s.Name, j)
		}
		seen[s.Name] = i
		steps[i] = s
	}
	return steps, nil
}

func contextExtension(ctx map[string]any) (*runtime.RawExtension, error) {
	if len(ctx) == 0 {
		return nil, nil
	}
	js, err := json.Marshal(ctx)
	if err != nil {
		return nil, fmt.Errorf("run context: %w", err)
	}
	return &runtime.RawExtension{Raw: js}, nil
}

var notName = regexp.MustCompile(`[^a-z0-9-]+`)

// namePrefix is a generateName for the run: "APPID-CATEGORY-", lowercased,
// other characters as dashes, short enough for a generated suffix and the
// ConfigMap's "-configuration".
func namePrefix(appID, category string) string {
	p := strings.Trim(notName.ReplaceAllString(strings.ToLower(appID+"-"+category), "-"), "-")
	if len(p) > 40 {
		p = strings.TrimRight(p[:40], "-")
	}
	if p == "" || p[0] < 'a' || p[0] > 'z' {
		p = "app-" + p
	}
	return p + "-"
}

// ownerRef makes run the controller owner of its configuration ConfigMap.
func ownerRef(run *v1alpha1.WorkflowRun) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               "WorkflowRun",
		Name:               run.Name,
		UID:                run.UID,
		Controller:         ptr(true),
		BlockOwnerDeletion: ptr(true),
	}
}

func configMapName(run string) string { return run + "-configuration" }

func runName(run *v1alpha1.WorkflowRun) string {
	if run.Name != "" {
		return run.Name
	}
	return run.GenerateName + "*"
}

func ptr[T any](v T) *T { return &v }
