#include "net/tls.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <array>

#include "net/ip.h"

namespace cachecar {
namespace {

// OpenSSL's queue of errors for this thread, oldest first, emptied.
std::string take_openssl_errors() {
  std::string text;
  while (const unsigned long code = ERR_get_error()) {
    std::array<char, 256> buffer{};
    ERR_error_string_n(code, buffer.data(), buffer.size());
    if (!text.empty()) {
      text += "; ";
    }
    text += buffer.data();
  }
  return text.empty() ? std::string("unknown TLS error") : text;
}

}  // namespace

std::shared_ptr<const TlsContext> TlsContext::create(const TlsSettings& settings,
                                                     std::string& error) {
  ERR_clear_error();
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  if (context == nullptr) {
    error = "cannot create a TLS context: " + take_openssl_errors();
    return nullptr;
  }
  std::shared_ptr<TlsContext> result(new TlsContext(context, !settings.insecure_skip_verify));
  // TLS 1.2 is the oldest Redis (6.0+) and every managed service accept; older is broken.
  SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION);
  if (!settings.ca_file.empty()) {
    if (SSL_CTX_load_verify_locations(context, settings.ca_file.c_str(), nullptr) != 1) {
      error = "ca_file: cannot load " + settings.ca_file + ": " + take_openssl_errors();
      return nullptr;
    }
  } else if (SSL_CTX_set_default_verify_paths(context) != 1) {
    error = "cannot load the system's trusted CAs: " + take_openssl_errors();
    return nullptr;
  }
  if (settings.cert_file.empty() != settings.key_file.empty()) {
    error = settings.cert_file.empty() ? "key_file: set without cert_file"
                                       : "cert_file: set without key_file";
    return nullptr;
  }
  if (!settings.cert_file.empty()) {
    if (SSL_CTX_use_certificate_chain_file(context, settings.cert_file.c_str()) != 1) {
      error = "cert_file: cannot load " + settings.cert_file + ": " + take_openssl_errors();
      return nullptr;
    }
    if (SSL_CTX_use_PrivateKey_file(context, settings.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
      error = "key_file: cannot load " + settings.key_file + ": " + take_openssl_errors();
      return nullptr;
    }
    if (SSL_CTX_check_private_key(context) != 1) {
      error = "key_file: " + settings.key_file + " is not the key of " + settings.cert_file;
      return nullptr;
    }
  }
  SSL_CTX_set_verify(context, settings.insecure_skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
                     nullptr);
  return result;
}

TlsContext::~TlsContext() { SSL_CTX_free(context_); }

TlsSession::TlsSession(const TlsContext& context, const std::string& peer_name)
    : ssl_(SSL_new(context.get())),
      network_in_(BIO_new(BIO_s_mem())),
      network_out_(BIO_new(BIO_s_mem())) {
  if (ssl_ == nullptr || network_in_ == nullptr || network_out_ == nullptr) {
    error_ = "cannot create a TLS session: " + take_openssl_errors();
    return;
  }
  // An exhausted memory BIO means "nothing yet", not end of file.
  BIO_set_mem_eof_return(network_in_, -1);
  SSL_set_bio(ssl_, network_in_, network_out_);  // the SSL owns both from here
  SSL_set_connect_state(ssl_);
  const bool is_address = parse_ip(peer_name).has_value();
  if (!is_address) {
    // RFC 6066: SNI carries DNS names only.
    SSL_set_tlsext_host_name(ssl_, peer_name.c_str());
  }
  if (context.verifies()) {
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
    X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    const int set = is_address ? X509_VERIFY_PARAM_set1_ip_asc(param, peer_name.c_str())
                               : X509_VERIFY_PARAM_set1_host(param, peer_name.c_str(), 0);
    if (set != 1) {
      error_ = "cannot verify the name " + peer_name + ": " + take_openssl_errors();
      SSL_free(ssl_);  // and the BIOs with it
      ssl_ = nullptr;
      network_in_ = nullptr;
      network_out_ = nullptr;
    }
  }
}

TlsSession::~TlsSession() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
  } else {
    BIO_free(network_in_);
    BIO_free(network_out_);
  }
}

void TlsSession::drain(std::string& ciphertext_out) {
  char* data = nullptr;
  const long pending = BIO_get_mem_data(network_out_, &data);
  if (pending > 0) {
    ciphertext_out.append(data, static_cast<size_t>(pending));
    (void)BIO_reset(network_out_);
  }
}

void TlsSession::fail(int ssl_error) {
  const long verify = SSL_get_verify_result(ssl_);
  if (!established_ && verify != X509_V_OK) {
    error_ = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
    ERR_clear_error();
    return;
  }
  if (ssl_error == SSL_ERROR_ZERO_RETURN) {
    error_ = "the server ended the TLS session";
    return;
  }
  error_ = take_openssl_errors();
}

TlsSession::Progress TlsSession::handshake(std::string& ciphertext_out) {
  if (ssl_ == nullptr) {
    return Progress::Failed;
  }
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  drain(ciphertext_out);
  if (rc == 1) {
    established_ = true;
    return Progress::Done;
  }
  const int ssl_error = SSL_get_error(ssl_, rc);
  if (ssl_error == SSL_ERROR_WANT_READ || ssl_error == SSL_ERROR_WANT_WRITE) {
    return Progress::NeedMore;
  }
  fail(ssl_error);
  return Progress::Failed;
}

bool TlsSession::receive(std::string_view ciphertext, std::string& plaintext_out,
                         std::string& ciphertext_out) {
  if (ssl_ == nullptr) {
    return false;
  }
  while (!ciphertext.empty()) {
    const int written = BIO_write(network_in_, ciphertext.data(),
                                  static_cast<int>(std::min<size_t>(ciphertext.size(), 1 << 30)));
    if (written <= 0) {
      error_ = "TLS input buffer refused data";
      return false;
    }
    ciphertext.remove_prefix(static_cast<size_t>(written));
  }
  if (!established_) {
    return true;  // the caller continues the handshake
  }
  ERR_clear_error();
  std::array<char, 16 * 1024> buffer;
  while (true) {
    const int read = SSL_read(ssl_, buffer.data(), static_cast<int>(buffer.size()));
    if (read > 0) {
      plaintext_out.append(buffer.data(), static_cast<size_t>(read));
      continue;
    }
    const int ssl_error = SSL_get_error(ssl_, read);
    drain(ciphertext_out);
    if (ssl_error == SSL_ERROR_WANT_READ) {
      return true;
    }
    fail(ssl_error);
    return false;
  }
}

bool TlsSession::send(std::string_view plaintext, std::string& ciphertext_out) {
  if (ssl_ == nullptr || !established_) {
    error_ = "TLS session not established";
    return false;
  }
  ERR_clear_error();
  while (!plaintext.empty()) {
    // Memory BIOs grow as needed, so a write is never partial for want of room.
    const int written = SSL_write(ssl_, plaintext.data(),
                                  static_cast<int>(std::min<size_t>(plaintext.size(), 1 << 30)));
    if (written <= 0) {
      fail(SSL_get_error(ssl_, written));
      return false;
    }
    plaintext.remove_prefix(static_cast<size_t>(written));
  }
  drain(ciphertext_out);
  return true;
}

}  // namespace cachecar
