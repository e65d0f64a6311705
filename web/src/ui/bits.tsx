// Small pieces shared by the views.
import type { ComponentChildren } from "preact";
import { formatAbsolute, formatRelative } from "../state/format";
import { phaseText, phaseTone } from "../state/phase";

/** A phase as text in a coloured badge; the colour is never the only cue. */
export function Phase({ phase }: { phase: string }) {
  return <span class={`phase tone-${phaseTone(phase)}`}>{phaseText(phase)}</span>;
}

/** A time relative to now, with the absolute time on hover and for screen readers. */
export function When({ t, now }: { t: string; now: Date }) {
  if (!t) return <span class="muted">—</span>;
  const abs = formatAbsolute(t);
  return (
    <time dateTime={t} title={abs} aria-label={abs}>
      {formatRelative(t, now)}
    </time>
  );
}

/** A link that navigates inside the app (history.pushState) and stays a real link for new tabs. */
export function Link(props: { href: string; go: (href: string) => void; class?: string; current?: boolean; children: ComponentChildren }) {
  return (
    <a
      href={props.href}
      class={props.class}
      aria-current={props.current ? "page" : undefined}
      onClick={(e) => {
        if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        props.go(props.href);
      }}
    >
      {props.children}
    </a>
  );
}

export function ErrorNote({ error }: { error: string }) {
  return error ? (
    <p class="error" role="alert">
      {error}
    </p>
  ) : null;
}
