/**
 * Health checks and the service that runs them.
 *
 * @since 0.1.0
 */
export * from "./Health.ts"
export * from "./HealthCheck.ts"
