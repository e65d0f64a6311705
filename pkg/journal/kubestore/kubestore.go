// Package kubestore keeps a run's journal and run context variables in a
// ConfigMap owned by the run, so they are garbage-collected with it. Reads
// go through the caller's reader (the controller's informer cache); a
// process-wide Memo keeps what this process wrote last so a cache that has
// not seen the write yet cannot hand back an older journal.
package kubestore

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/stepflow-dev/stepflow/api/v1alpha1"
	"github.com/stepflow-dev/stepflow/pkg/journal"
)

// The ConfigMap keys: the journal entries and context variables, and,
// apart, the steps' #Log lines.
const (
	journalKey = "journal"
	logsKey    = "logs"
)

// RunLabel is on every journal ConfigMap this package writes, with the
// run's name as its value (empty when the name is too long for a label
// value). The controller caches only the ConfigMaps that carry it.
const RunLabel = "stepflow.dev/run"

// runLabels are the labels of the journal ConfigMap of run.
func runLabels(run string) map[string]string {
	if len(validation.IsValidLabelValue(run)) > 0 {
		run = ""
	}
	return map[string]string{RunLabel: run}
}

// ContextConfigMapName is the ConfigMap holding a run's journal and run
// context variables, owned by the run (as KubeVela names its context
// backend).
func ContextConfigMapName(run string) string { return "workflow-" + run + "-context" }

// Memo remembers what this process last wrote for each run, so a read
// through the informer cache that has not yet seen our own write does not
// hand back an older journal (which would repeat a journaled effect).
type Memo struct {
	mu   sync.Mutex
	runs map[types.UID]memoEntry
}

type memoEntry struct {
	data journal.Data
	rv   uint64
}

// NewMemo returns an empty memo.
func NewMemo() *Memo { return &Memo{runs: map[types.UID]memoEntry{}} }

// Forget drops what is remembered for a run.
func (m *Memo) Forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.runs, uid)
}

// Len returns how many runs the memo holds a journal for.
func (m *Memo) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.runs)
}

// Store is a journal.Store in a ConfigMap owned by the run. It
// reads through the cache and makes no request while the run has no
// context backend yet (status.contextBackend unset): that lookup is known
// to miss.
type Store struct {
	live  client.Reader
	minRV uint64
	// loadedRV is the version of what Load returned or Save wrote: Save's
	// precondition. savedRV is the version after the last Save.
	loadedRV, savedRV uint64
	// stale makes the next Load read from the API server: a Save
	// conflicted.
	stale   bool
	c       client.Client
	run     *v1alpha1.WorkflowRun
	memo    *Memo
	exists  bool
	created bool
}

// New returns the store of run. m may be nil (no memo: a one-off client).
func New(c client.Client, run *v1alpha1.WorkflowRun, m *Memo) *Store {
	if m == nil {
		m = NewMemo()
	}
	return &Store{c: c, run: run, memo: m, exists: run.Status.ContextBackend != nil}
}

func (s *Store) key() types.NamespacedName {
	return types.NamespacedName{Namespace: s.run.Namespace, Name: ContextConfigMapName(s.run.Name)}
}

// VersionAnnotation on a run carries the resourceVersion of its journal
// ConfigMap after a write from outside the controller (the CLI's context
// set, restart, retry). The controller reads the ConfigMap from the API
// server, not its cache, while the cache is older than that.
const VersionAnnotation = "stepflow.dev/context-version"

// WithLive makes Load read from live (the API server) when the cached
// ConfigMap is older than the run's VersionAnnotation.
func (s *Store) WithLive(live client.Reader) *Store {
	s.live = live
	if v, ok := s.run.Annotations[VersionAnnotation]; ok {
		s.minRV, _ = strconv.ParseUint(v, 10, 64)
		if s.minRV > 0 {
			s.exists = true
		}
	}
	return s
}

// Load reads the run's journal: from the cache, or from the memo when the
// cache is older than this process's last write, or from the API server
// when the cache is older than the run's VersionAnnotation or a Save just
// conflicted. Save's precondition is the version Load returns.
func (s *Store) Load(ctx context.Context) (journal.Data, error) {
	if !s.exists {
		// Known to miss, unless this process created the ConfigMap and the
		// status that records it was not written.
		d, rv := s.fromMemo(0, journal.Data{})
		s.loadedRV, s.exists = rv, rv > 0
		return d, nil
	}
	var cm corev1.ConfigMap
	var err error
	if s.stale {
		err = s.liveReader().Get(ctx, s.key(), &cm)
	} else {
		err = s.c.Get(ctx, s.key(), &cm)
		if s.live != nil && s.minRV > 0 && !s.memoAtLeast(s.minRV) &&
			(apierrors.IsNotFound(err) || (err == nil && rvOf(&cm) < s.minRV)) {
			err = s.live.Get(ctx, s.key(), &cm)
		}
	}
	if apierrors.IsNotFound(err) {
		s.exists, s.stale = false, false
		d, rv := s.fromMemo(0, journal.Data{})
		s.loadedRV = rv
		if rv > 0 {
			// Our own write, not yet in the cache.
			s.exists = true
		}
		return d, nil
	}
	if err != nil {
		return journal.Data{}, fmt.Errorf("reading ConfigMap %s: %w", s.key(), err)
	}
	s.stale = false
	d, err := decode(&cm)
	if err != nil {
		return journal.Data{}, fmt.Errorf("ConfigMap %s: %w", s.key(), err)
	}
	d, s.loadedRV = s.fromMemo(rvOf(&cm), d)
	return d, nil
}

// liveReader reads from the API server: live when set, else the client
// (the CLI's client reads from the API server).
func (s *Store) liveReader() client.Reader {
	if s.live != nil {
		return s.live
	}
	return s.c
}

// logsData is what the logs key holds. Times came later: a ConfigMap
// written before has none.
type logsData struct {
	Lines   map[string][]string `json:"lines,omitempty"`
	Dropped map[string]int      `json:"dropped,omitempty"`
	Times   map[string][]int64  `json:"times,omitempty"`
}

func decode(cm *corev1.ConfigMap) (journal.Data, error) {
	var d journal.Data
	if raw := cm.Data[journalKey]; raw != "" {
		if err := json.Unmarshal([]byte(raw), &d); err != nil {
			return journal.Data{}, fmt.Errorf("%s is not a journal: %w", journalKey, err)
		}
	}
	if raw := cm.Data[logsKey]; raw != "" {
		var l logsData
		if err := json.Unmarshal([]byte(raw), &l); err != nil {
			return journal.Data{}, fmt.Errorf("%s is not a step log: %w", logsKey, err)
		}
		d.Logs, d.LogsDropped, d.LogTimes = l.Lines, l.Dropped, l.Times
	}
	return d, nil
}

// Decode returns the journal a journal ConfigMap holds (what Load returns
// for it), for readers that watch the ConfigMap.
func Decode(cm *corev1.ConfigMap) (journal.Data, error) {
	d, err := decode(cm)
	if err != nil {
		return journal.Data{}, fmt.Errorf("ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return d, nil
}

// encode returns the ConfigMap data of d: the entries and variables under
// journalKey, the logs apart under logsKey.
func encode(d journal.Data) (map[string]string, error) {
	logs := logsData{Lines: d.Logs, Dropped: d.LogsDropped, Times: d.LogTimes}
	d.Logs, d.LogsDropped, d.LogTimes = nil, nil, nil
	j, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	l, err := json.Marshal(logs)
	if err != nil {
		return nil, err
	}
	return map[string]string{journalKey: string(j), logsKey: string(l)}, nil
}

func rvOf(cm *corev1.ConfigMap) uint64 {
	rv, _ := strconv.ParseUint(cm.ResourceVersion, 10, 64)
	return rv
}

func (s *Store) memoAtLeast(rv uint64) bool {
	s.memo.mu.Lock()
	defer s.memo.mu.Unlock()
	m, ok := s.memo.runs[s.run.UID]
	return ok && m.rv >= rv
}

// Version is the resourceVersion of the ConfigMap after the last Save.
func (s *Store) Version() string { return strconv.FormatUint(s.savedRV, 10) }

// fromMemo prefers what this process wrote last over an older cached copy,
// and returns the version of what it chose.
func (s *Store) fromMemo(rv uint64, d journal.Data) (journal.Data, uint64) {
	s.memo.mu.Lock()
	defer s.memo.mu.Unlock()
	if m, ok := s.memo.runs[s.run.UID]; ok && m.rv >= rv {
		return m.data, m.rv
	}
	return d, rv
}

// Save writes d if the ConfigMap is still at the version this Store last
// loaded or saved (a resourceVersion precondition); if another writer
// changed it, or created it, meanwhile, Save returns an error wrapping
// journal.ErrConflict and the next Load reads the ConfigMap from the API
// server. It is one request: a Create for the first write, a merge patch
// after.
func (s *Store) Save(ctx context.Context, d journal.Data) error {
	data, err := encode(d)
	if err != nil {
		return err
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
		Name: s.key().Name, Namespace: s.run.Namespace,
		Labels: runLabels(s.run.Name),
		OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(s.run,
			v1alpha1.GroupVersion.WithKind("WorkflowRun"))},
	}, Data: data}
	if !s.exists || s.loadedRV == 0 {
		err := s.c.Create(ctx, cm)
		switch {
		case apierrors.IsAlreadyExists(err):
			s.exists, s.stale = true, true
			return fmt.Errorf("creating ConfigMap %s: %w: %w", s.key(), journal.ErrConflict, err)
		case err != nil:
			return fmt.Errorf("creating ConfigMap %s: %w", s.key(), err)
		}
		s.exists, s.created = true, true
		s.remember(cm.ResourceVersion, d)
		return nil
	}
	patch, err := json.Marshal(map[string]any{
		// The labels again: a ConfigMap that lost its label is out of
		// the controller's cache.
		"metadata": map[string]any{"resourceVersion": strconv.FormatUint(s.loadedRV, 10), "labels": cm.Labels},
		"data":     data,
	})
	if err != nil {
		return err
	}
	err = s.c.Patch(ctx, cm, client.RawPatch(types.MergePatchType, patch))
	switch {
	case apierrors.IsConflict(err):
		s.stale = true
		return fmt.Errorf("writing ConfigMap %s: %w: %w", s.key(), journal.ErrConflict, err)
	case apierrors.IsNotFound(err):
		// Deleted with its run: do not create it again.
		return fmt.Errorf("writing ConfigMap %s: it is gone (the run was deleted?): %w", s.key(), err)
	case err != nil:
		return fmt.Errorf("writing ConfigMap %s: %w", s.key(), err)
	}
	s.remember(cm.ResourceVersion, d)
	return nil
}

func (s *Store) remember(rv string, d journal.Data) {
	n, _ := strconv.ParseUint(rv, 10, 64)
	s.savedRV, s.loadedRV = n, n
	s.memo.mu.Lock()
	defer s.memo.mu.Unlock()
	s.memo.runs[s.run.UID] = memoEntry{data: d, rv: n}
}

// Exists reports whether the run's ConfigMap exists (as far as known).
func (s *Store) Exists() bool { return s.exists }

// Created reports whether this store created the ConfigMap.
func (s *Store) Created() bool { return s.created }

// Reference is the status.contextBackend of a run whose ConfigMap exists.
func (s *Store) Reference() *corev1.ObjectReference {
	return &corev1.ObjectReference{APIVersion: "v1", Kind: "ConfigMap", Namespace: s.run.Namespace, Name: s.key().Name}
}
