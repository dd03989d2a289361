/**
 * TLS for RPC: the options a server listens with, and dialing a server with
 * its certificate checked against the configured CA and server name.
 *
 * Dialing waits for the server's verdict, not just for the handshake. Under
 * TLS 1.3 the client finishes its handshake before the server has judged the
 * client certificate; a server that refuses it says so a moment later with
 * an alert, one that accepts it sends its session tickets. So a connection
 * counts as open once the first ticket arrives, and a refused client
 * certificate fails the dial instead of the first call.
 *
 * @module
 * @since 0.1.0
 */
import type * as Net from "node:net"
import * as Tls from "node:tls"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { type Address, formatAddress } from "../cluster/Node.ts"
import { ConnectionFailed } from "./Errors.ts"
import { clientIdentity, type RpcConfig } from "./RpcConfig.ts"

/** Options for `tls.createServer` and `server.listen`; the caller has checked that a certificate is configured. */
export const serverOptions = (config: RpcConfig): Tls.TlsOptions & Net.ListenOptions => {
  const { certificate, key, ca } = config.tls
  return {
    host: config.bindAddress.host,
    port: config.bindAddress.port,
    ...(certificate === undefined ? {} : { cert: certificate.pem }),
    ...(key === undefined ? {} : { key: Redacted.value(key.pem) }),
    ...(ca === undefined ? {} : { ca: ca.pem }),
    requestCert: config.requireClientCertificate,
    rejectUnauthorized: config.requireClientCertificate,
    minVersion: "TLSv1.2",
    // Node waits 120 s by default: a peer that opens a connection and says nothing holds it that long
    handshakeTimeout: Duration.toMillis(config.handshakeTimeout),
    keepAlive: true,
    keepAliveInitialDelay: Duration.toMillis(config.keepAlive),
    noDelay: true
  }
}

const isIp = (host: string) => /^[\d.]+$/.test(host) || host.includes(":")

/** Options for `tls.connect` to `address`. */
export const clientOptions = (address: Address, config: RpcConfig): Tls.ConnectionOptions => {
  const identity = clientIdentity(config)
  // Node checks the certificate against `servername`, else against `host` (an IP against its IP entries);
  // an IP may not be sent as SNI
  const servername = config.serverName ?? (isIp(address.host) ? undefined : address.host)
  return {
    host: address.host,
    port: address.port,
    ...(config.tls.ca === undefined ? {} : { ca: config.tls.ca.pem }),
    ...(servername === undefined ? {} : { servername }),
    ...(identity === undefined ? {} : { cert: identity.cert.pem, key: Redacted.value(identity.key.pem) }),
    rejectUnauthorized: true,
    minVersion: "TLSv1.2"
  }
}

/** What went wrong, in words a user can act on. */
export const describeFailure = (cause: unknown): string => {
  const error = cause as { code?: unknown; message?: unknown }
  const code = typeof error?.code === "string" ? error.code : undefined
  const message = typeof error?.message === "string" ? error.message : String(cause)
  switch (code) {
    case "ECONNREFUSED":
      return "connection refused (nothing listens there)"
    case "ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED":
    case "ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE":
    case "ERR_SSL_TLSV1_ALERT_UNKNOWN_CA":
      return `the server refused this client's certificate (${code})`
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return `the server's certificate is not for this server name (${message})`
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "CERT_UNTRUSTED":
      return `the server's certificate is not signed by a trusted CA (${code})`
    case "CERT_HAS_EXPIRED":
      return "the server's certificate has expired"
    default:
      return code === undefined ? message : `${code}: ${message}`
  }
}

/**
 * Opens a TLS connection to `address` and waits for the server to accept
 * this client (see the module comment). Interruption or the connect timeout
 * destroys the socket; after success the caller owns it.
 */
export const dial = (address: Address, config: RpcConfig): Effect.Effect<Tls.TLSSocket, ConnectionFailed> => {
  const where = formatAddress(address)
  return Effect.callback<Tls.TLSSocket, ConnectionFailed>((resume) => {
    const socket = Tls.connect(clientOptions(address, config))
    socket.setNoDelay(true)
    socket.setKeepAlive(true, Duration.toMillis(config.keepAlive))
    let settled = false
    const cleanup = () => {
      socket.off("secureConnect", onSecure)
      socket.off("session", onAccepted)
      socket.off("error", onError)
      socket.off("close", onClose)
    }
    const fail = (reason: string, cause?: unknown) => {
      if (settled) return
      settled = true
      cleanup()
      socket.destroy()
      resume(
        Effect.fail(
          new ConnectionFailed(cause === undefined ? { address: where, reason } : { address: where, reason, cause })
        )
      )
    }
    const onAccepted = () => {
      if (settled) return
      settled = true
      cleanup()
      resume(Effect.succeed(socket))
    }
    const onSecure = () => {
      // TLS 1.2 judges the client certificate inside the handshake
      if (socket.getProtocol() !== "TLSv1.3") onAccepted()
    }
    const onError = (error: Error) => fail(describeFailure(error), error)
    const onClose = () => fail("the server closed the connection during the TLS handshake")
    // never left without an error listener: a late error must not crash the process
    socket.on("error", () => {})
    socket.once("secureConnect", onSecure)
    socket.once("session", onAccepted)
    socket.on("error", onError)
    socket.once("close", onClose)
    return Effect.sync(() => {
      if (settled) return
      settled = true
      cleanup()
      socket.destroy()
    })
  }).pipe(
    Effect.timeoutOrElse({
      duration: config.connectTimeout,
      orElse: () =>
        Effect.fail(
          new ConnectionFailed({
            address: where,
            reason: `no TLS connection within ${Duration.format(config.connectTimeout)}`
          })
        )
    })
  )
}
