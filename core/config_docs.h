// The meaning of every config key, one line each, and the key reference `zt train --help`
// prints: types, defaults, choices and ranges come from the schema (describe_config_keys), the
// meanings from one table, so the reference cannot drift from what the parser accepts.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace zt {

// The one-line meaning of a key path ("model.n_layer"); empty when the table lacks it.
std::string_view config_key_doc(std::string_view path);
// Every key path the table documents, in table order.
std::vector<std::string> documented_config_keys();
// Every key of the schema grouped by section: type (enum values, range), default, meaning.
std::string config_reference();

}  // namespace zt
