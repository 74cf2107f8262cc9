// Errors raised by the core. The binding maps ConfigError to ConfigurationError (a ValueError)
// and BackendError to ratelimiter.exceptions.BackendError.
#pragma once

#include <stdexcept>
#include <string>

namespace ratelimiter {

// An invalid parameter; the message names the parameter.
class ConfigError : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

// A store could not complete a decision (I/O error, timeout, corrupt state).
class BackendError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The store could not be reached at all (refused connection, unreachable host).
class BackendConnectionError : public BackendError {
public:
    using BackendError::BackendError;
};

}  // namespace ratelimiter
