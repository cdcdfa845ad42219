//! The secret management service: releases secrets only to attested enclaves.
