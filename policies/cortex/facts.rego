# Normalised views of the input document (cortex_trust/schemas/input.schema.json).
#
# Every rule here is defined for every input that matches the schema, including minimal ones
# (manifest.document null, optional fields missing, empty evidence). A missing or mistyped
# field reads as "not present", never as "passed"; builtins only ever see values of the type
# they take, so no evaluation can fail on odd input (regorus raises on builtin errors where OPA
# returns undefined, and both engines must agree).
#
# Portability rule for every module: inside `not`, use only a plain reference, an `==`
# comparison, or a call of a rule/function whose arguments are always defined. OPA evaluates
# `not f(x)` / `not x <= y` / `not x in y` as undefined (not true) when x is undefined, where
# regorus gives true; so write `not _ok` with `_ok if x <= y` instead.
package cortex

import rego.v1

# Always an object, so checks on it are always defined (config.rego reports what is missing).
cfg := data.cortex_config if is_object(data.cortex_config) else := {}

# A configuration value by path, or null when missing.
conf(path) := object.get(cfg, path, null)

# A numeric configuration value as text for messages ("?" when it is not a number), so that a
# message never makes its check undefined.
conf_number_text(path) := sprintf("%v", [conf(path)]) if is_number(conf(path)) else := "?"

# --- manifest ----------------------------------------------------------------------------------

manifest_valid if input.manifest.valid == true

manifest_problems := [p | some p in items(input.manifest.problems); is_string(p)]

# The manifest content, only when it is valid: an invalid manifest declares nothing.
manifest_document := input.manifest.document if {
	manifest_valid
	is_object(input.manifest.document)
} else := {}

manifest_trust := manifest_document.trust if is_object(manifest_document.trust) else := {}

# Permissions are declared only by an explicit true (defaults: network and filesystem false).
declares_network if manifest_trust.network == true

declares_filesystem if manifest_trust.filesystem == true

# The sandbox is off only by an explicit false (default: trust.sandbox true).
declares_no_sandbox if manifest_trust.sandbox == false

# --- plugin, artifact, context -------------------------------------------------------------------

full_name := input.plugin.full_name if is_string(input.plugin.full_name) else := ""

digest := input.artifact.digest if is_string(input.artifact.digest) else := ""

# The image digest for messages ("the image" when it is unknown).
digest_text := digest if digest != "" else := "the image"

operation := input.context.operation if is_string(input.context.operation) else := ""

now_text := input.context.now if is_string(input.context.now) else := ""

# --- evidence --------------------------------------------------------------------------------------

# Each evidence piece: an object, or {} when absent, not an object, or from a source the policy
# does not trust for it (sources.rego). One rule per piece (not a shared function): rules are
# memoised per decision, function calls are not.
signature := input.evidence.signature if "signature" in counted_kinds else := {}

scan := input.evidence.scan if "scan" in counted_kinds else := {}

tests := input.evidence.tests if "tests" in counted_kinds else := {}

review := input.evidence.review if "review" in counted_kinds else := {}

usage := input.evidence.usage if "usage" in counted_kinds else := {}

revocation := input.evidence.revocation if is_object(input.evidence.revocation) else := {}

# A string field of an evidence piece, or "" when absent or not a string.
str_field(obj, key) := obj[key] if is_string(obj[key]) else := ""

# A number field of an evidence piece, or 0 when absent or not a number. Integers beyond 2^53
# are clamped to +/-2^53: regorus holds them as floats where OPA keeps them exact, and the two
# must compute and print the same. Print these with %v (regorus renders a negative %d as "--5").
num_field(obj, key) := n if {
	# The common case (a number within range) without calling _clamp.
	n := obj[key]
	is_number(n)
	n <= _max_exact
	n >= 0 - _max_exact
} else := _clamp(obj[key]) if is_number(obj[key]) else := 0

_max_exact := 9007199254740992

_clamp(n) := n if {
	n <= _max_exact
	n >= 0 - _max_exact
} else := _max_exact if {
	n > _max_exact
} else := 0 - _max_exact

# x when it is an array or object (something `some ... in` can walk), else []: iterating over
# anything else is an error in regorus and nothing in OPA.
items(x) := x if is_array(x) else := x if is_object(x) else := []

# Strings from evidence can be long; messages stay bounded (a reason message is <= 2000 chars).
short(s) := substring(s, 0, 200)

# --- time ----------------------------------------------------------------------------------------
# Times in input are RFC 3339 UTC with second precision ("2026-11-25T22:00:00Z"). The clock is
# input.context.now, never time.now_ns(), so decisions and tests are deterministic. A time is
# parsed only after it is proven well-formed, so parsing cannot fail.

# A real calendar date (month lengths, February 29 only in leap years), as one regular
# expression: RE2 (OPA) and Rust's regex (regorus) accept the same syntax, and one match is far
# cheaper than parsing the parts.
_rfc3339 := `^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26]|00)00)-02-29)T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$`

_date := `^(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:0[48]|[2468][048]|[13579][26]|00)00)-02-29)$`

# Nanoseconds since the epoch must fit a signed 64-bit integer (1677-09-21 to 2262-04-11), or
# parsing fails ("time outside of valid range"); so valid times are those of the years 1678 to
# 2261, compared as text (the year leads the string, and a comparison never fails).
valid_time(s) if {
	is_string(s)
	regex.match(_rfc3339, s)
	s >= "1678"
	s < "2262"
}

# Nanoseconds since the epoch; undefined unless s is a valid RFC 3339 UTC time (valid_time's
# body written out: one function call less per parsed time).
time_ns(s) := time.parse_rfc3339_ns(s) if {
	is_string(s)
	regex.match(_rfc3339, s)
	s >= "1678"
	s < "2262"
}

# Like time_ns, also accepting a date ("2027-01-31" = the start of that day).
time_or_date_ns(s) := time.parse_rfc3339_ns(s) if valid_time(s)

time_or_date_ns(s) := time.parse_rfc3339_ns(concat("", [s, "T00:00:00Z"])) if {
	is_string(s)
	regex.match(_date, s)
	s >= "1678"
	s < "2262"
}

# Undefined when context.now is malformed: everything that needs the clock then fails closed.
now_ns := time_ns(input.context.now)

# --- patterns ----------------------------------------------------------------------------------------

# Glob match with "/" as the separator; false (never an error) for non-string arguments.
# Equal strings match without a glob (the common case for issuers, and much cheaper). A NUL in
# the value is matched as another ordinary character (U+0001): regorus' glob raises on NUL, OPA
# treats it as an ordinary character, and patterns contain neither.
matches(pattern, value) if {
	is_string(value)
	pattern == value
} else := glob.match(pattern, ["/"], replace(value, "\u0000", "\u0001")) if {
	is_string(pattern)
	is_string(value)
}

# Whether the plugin's full_name matches one of the globs in patterns.
plugin_matches(patterns) if {
	is_array(patterns)
	some p in patterns
	matches(p, full_name)
}
