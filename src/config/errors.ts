// The one error a bad configuration raises: it names the variable, so the operator knows what to fix.
export class ConfigError extends Error {
  constructor(readonly variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}
