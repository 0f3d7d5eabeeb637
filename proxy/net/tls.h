#pragma once
// TLS toward Redis (rediss://) with OpenSSL over memory BIOs: OpenSSL never touches a socket.
// The Redis client moves ciphertext between its own libuv socket and a TlsSession, so every
// byte still goes through the loop, under the client's timeouts, and hiredis stays what it is
// (a reply reader; 0.14 has no TLS of its own).
//
// Verification is on by default, as every TLS client should have it: the chain against
// tls.ca_file (else the system's trust store) and the server's name (or IP address) against
// tls.server_name (else the URL's host). insecure_skip_verify turns both off.

#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <string_view>

#include "net/tls_settings.h"

namespace cachecar {

// An SSL_CTX built once from TlsSettings and shared by every connection of the process.
class TlsContext {
 public:
  // nullptr with `error` naming the setting ("ca_file: ...") when a file cannot be used.
  static std::shared_ptr<const TlsContext> create(const TlsSettings& settings, std::string& error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return context_; }
  bool verifies() const { return verifies_; }

 private:
  TlsContext(SSL_CTX* context, bool verifies) : context_(context), verifies_(verifies) {}
  SSL_CTX* context_;
  bool verifies_;
};

// One client connection's TLS state. Ciphertext to send is appended to the caller's string by
// every call that may produce some (the handshake, writes, and reads: TLS 1.3 answers a key
// update); the caller writes it to the socket.
class TlsSession {
 public:
  // `peer_name`: a DNS name (sent as SNI and verified) or an IP address (verified only).
  TlsSession(const TlsContext& context, const std::string& peer_name);
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  enum class Progress { Done, NeedMore, Failed };
  // Continues the handshake with what was received so far.
  Progress handshake(std::string& ciphertext_out);
  // Takes ciphertext from the socket; appends the plaintext it carries. False on a fatal
  // error (error() says which); a close_notify is reported as an error too: Redis never ends
  // a session it means to keep.
  bool receive(std::string_view ciphertext, std::string& plaintext_out,
               std::string& ciphertext_out);
  // Encrypts `plaintext` whole. False on a fatal error.
  bool send(std::string_view plaintext, std::string& ciphertext_out);

  bool established() const { return established_; }
  // Why the last call failed: OpenSSL's reason, or the certificate check's.
  const std::string& error() const { return error_; }

 private:
  void drain(std::string& ciphertext_out);
  void fail(int ssl_error);

  SSL* ssl_ = nullptr;
  BIO* network_in_ = nullptr;   // ciphertext from the socket, read by OpenSSL
  BIO* network_out_ = nullptr;  // ciphertext for the socket, written by OpenSSL
  bool established_ = false;
  std::string error_;
};

}  // namespace cachecar
