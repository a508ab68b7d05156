// The page's error banner: the last failure an API call reported, with its code, message and field, until dismissed.
import type { ApiFailure } from './api';

export function ErrorBanner({ failure, onDismiss }: { failure: ApiFailure | null; onDismiss?: () => void }) {
  if (failure === null) return null;
  return (
    <div class="error" role="alert">
      <p>
        <strong>{failure.code}</strong> {failure.message}
        {failure.field !== undefined && (
          <>
            {' '}
            (field <code>{failure.field}</code>)
          </>
        )}
      </p>
      {onDismiss && (
        <button type="button" class="quiet" aria-label="Dismiss the error" onClick={onDismiss}>
          ×
        </button>
      )}
    </div>
  );
}
