// Package component is the "component" op family: component.#Render (and
// its flat twin op.#RenderComponent) renders one component of an
// application into the Kubernetes objects it stands for.
//
// # Model
//
// A component has a type, a name and properties. Its type names a
// ComponentDefinition (KubeVela's shape): a CUE template that reads the
// properties as parameter and the render context as context, and writes
// the component's main object as output and any others as outputs. An
// SREWorks TYPE selects the definition of the same name in lower case with
// "_" as "-": K8S_MICROSERVICE is k8s-microservice.
//
//	render(type, name, namespace, properties, context)
//	  │ Types: the ComponentDefinition named after type (run namespace,
//	  │        then system namespace); none is a permanent error
//	  ▼
//	Evaluator.Evaluate(template, parameter = properties,
//	                   context = {name, namespace, appName, appId, ...})
//	  │ op calls inside the template go to a Runner that admits only
//	  │ op.Pure ops and helm.render; anything else is refused for good
//	  ▼
//	objects = [output, outputs sorted by key], each with its namespace
//	          defaulted (namespaced kinds only) and the component's labels
//
// The evaluation is the untrusted part: in the controller the Evaluator is
// the sandbox pool, so a component template runs in a worker process under
// its bounds, never in the controller's own. The step's own evaluation
// waits for the render op meanwhile; a worker serves several sessions at
// once, so the nested session can run on the same worker.
//
// The op is Idempotent: rendering reads definitions and computes, so it
// runs again on every evaluation of the step, and a changed definition
// takes effect at once. How each outcome of the nested evaluation is
// handled:
//
//	Succeeded             the objects (none at all is a permanent error)
//	Failed                permanent error naming component, type and the
//	                      evaluation's message (with its CUE position)
//	Waiting, Suspending   permanent error: a render cannot wait
//	Broken, Interrupted   plain error: a retry may pass
//
// The evaluator that renders is built after the op set (the sandbox pool
// needs the ops), so Options.Evaluator is usually a Deferred set once the
// pool exists.
package component
