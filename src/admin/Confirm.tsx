// A confirmation as a modal <dialog>: the question, and buttons to go ahead or cancel (Escape cancels too).
import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

interface ConfirmProps {
  children: ComponentChildren;
  action: string;
  onConfirm(): void;
  onCancel(): void;
}

export function Confirm({ children, action, onConfirm, onCancel }: ConfirmProps) {
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    dialog.current!.showModal();
  }, []);
  return (
    <dialog ref={dialog} class="confirm" onCancel={onCancel}>
      <div>{children}</div>
      <div class="row end">
        <button type="button" class="quiet" onClick={onCancel}>
          Cancel
        </button>
        <button type="button" class="danger" onClick={onConfirm}>
          {action}
        </button>
      </div>
    </dialog>
  );
}
