#include "actors/openssl_error_queue.hpp"

#include <dlfcn.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <cstdlib>

namespace troupe {

void keep_openssl_error_queue_fix() {}

namespace {

template <typename Fn>
Fn next_definition(const char* name) {
  void* f = ::dlsym(RTLD_NEXT, name);
  if (!f) std::abort();  // libssl is linked in: this cannot happen
  return reinterpret_cast<Fn>(f);
}

}  // namespace
}  // namespace troupe

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static const auto real = troupe::next_definition<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static const auto real = troupe::next_definition<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return real(ssl, buf, num);
}

int SSL_accept(SSL* ssl) {
  static const auto real = troupe::next_definition<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return real(ssl);
}

int SSL_connect(SSL* ssl) {
  static const auto real = troupe::next_definition<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return real(ssl);
}

}  // extern "C"
