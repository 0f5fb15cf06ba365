/** The logging the access layer needs; a pino logger fits. */
export interface AccessLogger {
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

export const silentLogger: AccessLogger = {
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
