#pragma once
// A fix, from outside, for CAF 0.17.6's OpenSSL sessions (caf/openssl/session.cpp): they read
// SSL_get_error() after SSL_read/SSL_write/SSL_accept/SSL_connect without first emptying the
// thread's OpenSSL error queue, and never empty it after a failure when CAF's logging is off.
// OpenSSL requires an empty queue before each of those calls; with a stale entry SSL_get_error()
// says SSL_ERROR_SSL, so one peer that fails its handshake (a client without a certificate) makes
// every other connection that CAF's I/O thread serves fail its next read: the cluster falls apart.
// This file defines those four functions in the executable (symbol interposition: the dynamic
// linker binds libcaf_openssl's calls to them first); each empties the queue and calls OpenSSL's.
// keep_openssl_error_queue_fix() does nothing but make the linker keep this file.
namespace troupe {

void keep_openssl_error_queue_fix();

}  // namespace troupe
