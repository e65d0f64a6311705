// Package appop is the "app" op family: what a step reads of the
// application its run was launched with (pkg/app), the run a rollback
// returns to, and the launch of a run that replays another
// (vela/app, and the flat twins op.#AppComponents, op.#LatestRun and
// op.#Relaunch).
//
// The model. A run launched from an application carries its
// configuration (the ApplicationConfiguration document, inline or in an
// owned ConfigMap) and the labels stepflow.dev/app-id, stepflow.dev/scope
// and stepflow.dev/category (see pkg/app). Ops read two things:
//
//   - the step's own run and its configuration, through the reader the
//     family is built with (the controller's): a step may always read
//     what it was launched with. The run is named by op.Step (RunName,
//     Namespace) and must have the step's RunUID, so a step of a deleted
//     run never reads the configuration of a new run of the same name;
//   - everything else, other runs and the runs it creates, through
//     kube.Clusters for the local cluster: a client acting as the step's
//     identity (pkg/tenancy), which may not see or launch more than the
//     run's ServiceAccount may.
//
// The ops:
//
//	op          does                                            class
//	components  the selected components of the run's            Idempotent
//	            configuration, resolved: {{ Global.x }},
//	            parameter values and data inputs written into
//	            properties, override and topology policies
//	            applied (Select; no request beyond reading the
//	            run and its ConfigMap)
//	latest-run  the newest run of the same app-id and scope,    Idempotent
//	            in a category and a phase, other than the
//	            step's own (one LIST by label selector)
//	relaunch    creates a named run replaying another's steps   Idempotent
//	            and stored configuration (app.Replay), only if
//	            absent; a run of that name that another step
//	            launched is a permanent error
//
// Relaunch is idempotent by name: the definition derives the name from
// the step attempt, so a step evaluated again after a crash between the
// create and its status write finds the run it made (its
// stepflow.dev/launched-by annotation names the parent run's UID and the
// step) and reports created: false instead of launching a second one.
// The new run is not owned by the step's run, so it outlives any cleanup
// of it. When the run it replays has an instance id (app.LabelInstanceID)
// and the family was given an allocator (WithInstanceIDs: the
// controller's, from the system namespace's counter), the new run gets
// the next id, allocated only when it is about to be created.
//
// {{ Global.x }} resolves in a step as it did at the launch: the keys the
// engine adds to every template's context (name, namespace, stepName,
// stepSessionID) override a global parameter only with the value the
// run's spec.context gave them.
//
// Errors: a configuration that cannot be what the step asks (no stored
// configuration, a component or policy it does not have, a placeholder or
// data input without a value, a malformed revisionName) is permanent; a
// failed API request is retryable unless the step's identity was denied.
//
// Retention: Stepflow deletes no finished runs today, so a rollback
// target always exists. Any cleanup added later must keep the newest
// succeeded DEPLOY runs of each app-id and scope (at least 3), the runs
// latest-run finds.
package appop
