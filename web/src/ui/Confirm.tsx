// The confirmation of an action: a modal dialog. Focus moves to its confirm
// button (Enter confirms), Tab stays inside it, Esc or Cancel closes it, and
// focus goes back to what had it before.
import { useEffect, useRef } from "preact/hooks";

export interface ConfirmProps {
  title: string;
  text: string;
  confirmLabel: string;
  /** Styles the confirm button as destructive. */
  danger?: boolean;
  confirm(): void;
  cancel(): void;
}

export function Confirm(props: ConfirmProps) {
  const box = useRef<HTMLDivElement>(null);
  const ok = useRef<HTMLButtonElement>(null);
  // The latest cancel, so the effect runs once per dialog whatever the parent passes.
  const cancelRef = useRef(props.cancel);
  cancelRef.current = props.cancel;
  const cancel = () => cancelRef.current();

  useEffect(() => {
    const before = document.activeElement as HTMLElement | null;
    ok.current?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") {
        e.preventDefault();
        cancel();
        return;
      }
      if (e.key !== "Tab" || !box.current) return;
      const els = [...box.current.querySelectorAll<HTMLElement>("button:not([disabled])")];
      if (els.length === 0) return;
      const i = els.indexOf(document.activeElement as HTMLElement);
      const next = e.shiftKey ? (i <= 0 ? els.length - 1 : i - 1) : i === els.length - 1 ? 0 : i + 1;
      e.preventDefault();
      els[next].focus();
    };
    document.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("keydown", onKey);
      if (before && document.contains(before)) before.focus();
    };
  }, []);

  return (
    <div class="backdrop" onClick={(e) => e.target === e.currentTarget && cancel()}>
      <div ref={box} class="dialog" role="dialog" aria-modal="true" aria-labelledby="confirm-h" aria-describedby="confirm-d">
        <h2 id="confirm-h">{props.title}</h2>
        <p id="confirm-d">{props.text}</p>
        <div class="buttons">
          <button ref={ok} type="button" data-testid="confirm" class={props.danger ? "danger" : "primary"} onClick={props.confirm}>
            {props.confirmLabel}
          </button>
          <button type="button" class="quiet" onClick={cancel}>
            Cancel
          </button>
        </div>
      </div>
    </div>
  );
}
