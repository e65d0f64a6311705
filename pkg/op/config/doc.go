// Package config is the "config" op family: KubeVela's config API (vela/config
// and the flat op.#CreateConfig, op.#ReadConfig, op.#ListConfig,
// op.#DeleteConfig), storing each config as a Secret in the format KubeVela
// core's `vela config` reads and writes, so that configs written by either
// are seen by the other.
//
// The model. A config is a named set of properties (any JSON object) in a
// namespace, optionally made from a config template. It is the Secret of
// that name and namespace with
//
//	label       config.oam.dev/catalog: velacore-config   (marks it a config)
//	label       config.oam.dev/type: TEMPLATE             ("" without one)
//	label       config.oam.dev/scope: SCOPE               (the template's; only with one)
//	annotation  config.oam.dev/alias, config.oam.dev/description ("")
//	annotation  config.oam.dev/sensitive: "true"|"false"  (the template's; only with one)
//	annotation  config.oam.dev/template-namespace: NS     (only with a template)
//	data        input-properties: the properties as JSON
//	type        "/TEMPLATE" with a template, else Opaque
//
// A template is named "NAME" (in the template namespace, vela-system unless
// WithTemplateNamespace says otherwise) or "NAMESPACE/NAME"; it is the
// ConfigMap config-template-NAME that `vela config-template apply` writes.
// Creating a config from a template that does not exist fails, as in
// KubeVela. Stepflow does not render a template's CUE (its output Secret,
// outputs objects and validation, which KubeVela evaluates with its own
// providers): the config keeps the template's labels and annotations and
// stores its properties, which is what read, list and delete, ours and
// KubeVela's, use. A template's extra output objects are therefore not
// created; deleting a config still deletes the objects its
// objects-reference data names, as KubeVela does, whoever wrote it.
//
// Every request is made through the step's identity (op.Step.ServiceAccount,
// resolved by a kube.Clusters on the local cluster), as the kube ops are:
// a step can create, read, list or delete the configs its ServiceAccount
// may touch Secrets for (and read the template ConfigMap of), and no more.
//
//	op      requests                                  class
//	create  GET template ConfigMap (with a template),  Idempotent
//	        GET Secret, server-side apply of it
//	read    GET Secret                                Idempotent
//	list    LIST Secrets by catalog and type labels   Idempotent
//	delete  GET Secret, DELETE its referenced         Effect
//	        objects, DELETE Secret
//
// create is Idempotent: it writes the whole desired Secret by server-side
// apply (field owner "stepflow"), so applying it again with the same
// parameters changes nothing and applying it after someone changed the
// config puts it back, as kube.#Apply does; it runs again whenever the step
// is evaluated again. delete is an Effect: it fails on a config that does
// not exist (KubeVela's rule), so running it again would fail a step that
// already succeeded, and it would delete a config created again since.
//
// Errors name the config (or template) and its namespace. These fail
// permanently: a missing name or (for list) template; a config or template
// that does not exist (read, delete, create from a template); a Secret of
// that name that is not a config; a change of an existing config's template
// or Secret type (both fixed at creation, as in KubeVela); reading a
// sensitive config; a request the identity may not make; a Secret the API
// server rejects as invalid. Any other API failure is retryable.
package config
