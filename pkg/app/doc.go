// Package app turns an application, SREWorks' ApplicationConfiguration
// (core.oam.dev/v1alpha2), into a WorkflowRun, and gives later steps the
// configuration a run was launched with.
//
// The model:
//
//   - An application configuration lists components (revisionName
//     "TYPE|NAME|VERSION", VERSION "_" for the latest), policies (topology:
//     where; override: changed parameter values), global parameters
//     (spec.parameterValues) and a workflow (spec.workflow.steps).
//
//   - A launch (Build, then Launch.Create; Run does both) takes the
//     document, an app id, a category (DEPLOY, ROLLBACK, ...), the run
//     context and the creator, and makes one WorkflowRun:
//     its steps are the workflow's (an unnamed step is TYPE-INDEX, INDEX
//     from 1; no steps: one "deploy" step); its context is the given one;
//     labels stepflow.dev/app-id, stepflow.dev/category and
//     stepflow.dev/scope say whose, what kind and where (see LabelValue for
//     values that are not valid labels, targetScope for the scope); the
//     creator is an annotation.
//
//   - The document is kept with the run byte for byte, with its SHA-256:
//     up to InlineLimit (32 KiB) in the run's stepflow.dev/configuration
//     annotation, above it (up to MaxConfigurationSize, about 1 MiB) in an
//     immutable ConfigMap "RUN-configuration" owned by the run and named
//     by its stepflow.dev/configuration-configmap annotation.
//     Configuration reads it back from either place and refuses a document
//     whose hash changed, so a rollback replays exactly what ran. A run
//     written by hand with these labels and annotations is the same thing.
//
//   - {{ Global.x }} in components, policies and steps resolves from the
//     global parameters, overridden by the run context's key x
//     (ApplicationConfiguration.Resolved). A launch checks that every
//     placeholder resolves with the initial context. The run's steps get
//     their properties resolved with it; the document is stored
//     unresolved, and steps that read it resolve it with the context they
//     see.
//
//   - A replay (Replay, then Launch.CreateIfAbsent) is a run launched by
//     a step of another run, a rollback: the source run's steps and stored
//     configuration byte for byte, its app-id and scope, a new category,
//     its context with the step's keys over it; the launching run is its
//     creator and is named in stepflow.dev/parent-run and
//     stepflow.dev/launched-by (parent UID and step), and does not own it.
//     Created only if absent, so a step evaluated again finds the run it
//     made (pkg/op/appop's relaunch).
//
//   - Instance ids. SREWorks clients name a run by a number. A launch
//     with Request.InstanceCounterNamespace (the REST API sets the system
//     namespace; `stepflow launch` sets none, so its runs have no id)
//     gets the next one from a counter, the ConfigMap
//     stepflow-instance-ids in that namespace, updated with its
//     resourceVersion so two launches never get one id (a conflict is
//     read again and retried until the context ends), and carries it in
//     the label stepflow.dev/instance-id; RunByInstanceID finds the run
//     by it. Ids grow, may have gaps, and are never reused: a counter
//     that is gone starts again above the highest id a run carries. A
//     replay carries the id its caller allocated
//     (ReplayRequest.InstanceID), from the counter the source's came
//     from, with the caller's own client, not the step's identity
//     (pkg/op/appop's relaunch, given the controller's allocator).
//
//   - Rollback targets. A rollback returns to the newest succeeded DEPLOY
//     run of its app-id and scope (RollbackTargets; newest by Newer: runs
//     not ended yet, then by end time, instance id and name). The
//     latest-run op, the cleanup that keeps those runs and the UI's
//     gray-release view all follow this one rule.
//
//   - A Submission is a run that is not an application's: of a stored
//     Workflow with a context (`stepflow submit`, the UI) or of one step
//     with properties (the UI's launch from a definition).
//
// Nothing here reconciles or renders: step definitions do that.
//
// # States
//
// InstanceState and TaskState map a run and a step onto SREWorks'
// instance and task states (its PREPROCESSING never occurs). A run:
//
//	status.status       instance
//	"", initializing    PENDING
//	executing           RUNNING; SUSPEND while status.suspend is set
//	suspending          SUSPEND; RUNNING once resumed (status.suspend
//	                    unset and no step suspending) until the next
//	                    tick makes it executing
//	succeeded, skipped  SUCCESS
//	failed              FAILURE; EXCEPTION when every failed step (a
//	                    group's sub-steps counting for it) is an
//	                    EXCEPTION, or the Failed condition's reason is
//	                    WriteRefused
//	terminated          TERMINATED
//
// A step (or sub-step):
//
//	phase       reason                         task
//	pending     -                              PENDING
//	running     Wait                           WAITING
//	running     any other: Error (backing      RUNNING
//	            off), JournalError or
//	            EvalInterrupted (evaluated
//	            again), none
//	suspending  WaitSuspend (the operator      WAITING_SUSPEND
//	            suspended it while waiting)
//	suspending  Suspend (#Suspend or the       RUNNING_SUSPEND
//	            operator), none (a group)
//	succeeded   -                              SUCCESS
//	skipped     Skip (its if was false)        SUCCESS
//	skipped     UpstreamNotSucceeded           TERMINATED
//	stopped     -                              TERMINATED
//	failed      Terminate                      TERMINATED
//	failed      JournalError, EvalInterrupted, EXCEPTION
//	            EvalTimeout, EvalMemory,
//	            WriteRefused
//	failed      any other: Fail, OpError,      FAILURE
//	            FailedAfterRetries, Timeout,
//	            TemplateError, ParameterError,
//	            DefinitionNotFound,
//	            InputError, OutputError,
//	            ConditionError, SubStepFailed
//
// FAILURE is a step's own doing: what it ran, or how it is written, went
// wrong, and running it again as it is fails again. EXCEPTION is Stepflow
// not carrying the step on: its evaluations were interrupted too often or
// went over the evaluator's time or memory bound, its journal could not
// be saved, or the API server refused what it produced; it may succeed on
// a healthier system.
package app
