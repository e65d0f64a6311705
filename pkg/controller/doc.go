// Package controller runs WorkflowRuns on Kubernetes with controller-runtime.
//
// The WorkflowRun reconciler is thin: it reads the run, its Workflow (for
// workflowRef), its step definitions and its journal through the informer
// cache, runs one engine.Tick, writes the status back in one patch, and asks
// to be called again at the tick's wake-up time. Reads never go to the API
// server, and a lookup known to miss (the journal ConfigMap of a run that
// has none yet) is not made.
//
// The definition reconciler, one per definition.Kind (WorkflowStepDefinition
// and ComponentDefinition), compiles each definition through the same
// evaluator the runs use (the sandbox pool in production) and reports the
// result as its Ready condition, so a template error shows on the
// definition itself with its CUE position. It runs when the controller
// starts and whenever a definition's generation changes.
//
// Two caches, each bounded by what the controller uses rather than by the
// cluster:
//
//   - The manager's cache (NewManager) holds the controller's own objects
//     only: WorkflowRuns, Workflows, WorkflowSchedules,
//     WorkflowStepDefinitions, ComponentDefinitions, and the ConfigMaps that carry
//     kubestore.RunLabel (the journals). No other
//     ConfigMap, no Secret, and no kind read unstructured is ever cached
//     there; such reads through the manager's client go to the API server.
//   - What kube ops read goes through an opcache.Reader (Setup): one
//     informer per kind and namespace a step reads or waits on, stopped
//     when idle; Secrets always read with a direct GET. Its informers'
//     events feed the Waker, which wakes the runs whose steps looked at
//     the object.
//
// Ops act as their run's identity (pkg/tenancy): the ServiceAccount the run
// names in spec.serviceAccountName, else its Workflow's, else
// Options.DefaultServiceAccount, in the run's namespace. The reconciler
// resolves it with the steps and hands it to the tick; the kube ops' client
// for a step reads through the opcache.Reader after an access review of
// that ServiceAccount, and writes and reads Secrets impersonating it.
// Options.SingleTenant gives every op the controller's own identity
// instead. The controller's own objects (status, journals, events) are
// always written as the controller.
//
// The schedule reconciler (ScheduleReconciler) creates the runs of
// WorkflowSchedules as Kubernetes' CronJob controller creates Jobs: at
// each reconcile it decides from the schedule, its time zone, its
// status.lastScheduleTime and the starting deadline which owed time, if
// any, to run now (only the most recent), applies the concurrency policy
// (Replace terminates through pkg/runop, as the CLI does), creates the
// run under a name derived from the scheduled time (so it is created
// once), and asks to be woken exactly at the next time by the injected
// clock.
//
// The cleanup reconciler (CleanupReconciler) acts only on finished runs.
// Its requests name a run ("run/NAME": its TTL, woken exactly at expiry)
// or a group ("workflow/NAME", "schedule/NAME": history limits;
// "app/ID/SCOPE": rollback targets that stopped being ones), so the
// workqueue folds the events of a group's runs into one reconcile. It
// never deletes the newest succeeded DEPLOY runs of an application and
// scope, the runs a rollback returns to.
//
// Setup builds the whole controller in a manager made by NewManager: the
// op set, the evaluator, the waker, the metrics, both reconcilers and the
// probes. The binary, the load harness and the envtest suite all call it,
// so the tests run what ships.
//
// What the run reconciler keeps in memory for a run (the journal copy that
// bridges cache lag, the resourceVersion of its own last status patch, the
// objects the waker watches for it) lives as long as the run moves: it is
// dropped when the cache shows the run finished, and when the run is
// deleted, even mid-flight.
//
// A status or journal write the API server refuses for its size (413,
// etcd's "request is too large", a 422 FieldValueTooLong) would be refused
// again, so it is not retried: the run ends failed with reason
// WriteRefused in its Failed condition and a Warning event, both naming
// the write and its size.
//
// Callbacks (callback.go, pkg/callback) hear a run's transitions. Each
// tick, before its status write, the reconciler derives the transitions
// from the status it read to the one it writes and adds them to
// status.callback.outbox in that same write; Callbacks, a Runnable with
// its own workqueue and workers fed by the WorkflowRun informer, POSTs
// them and removes them in a status patch of its own, which causes no
// tick. A run without a callback costs a nil check.
package controller
