# The normalised input views and helpers: time parsing (the clock is input.context.now),
# patterns, typed field access.
package cortex.facts_test

import data.cortex.fixtures_test as fx
import rego.v1

test_valid_times if {
	every t in ["2026-11-25T22:00:00Z", "2024-02-29T00:00:00Z", "2000-02-29T12:30:59Z", "1999-12-31T23:59:59Z"] {
		data.cortex.valid_time(t)
	}
}

test_invalid_times if {
	every t in [
		"2026-02-29T00:00:00Z", "1900-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-11-25T24:00:00Z",
		"2026-11-25T22:00:00.5Z", "2026-11-25T22:00:00+00:00", "2026-11-25", "", "now",
	] {
		not data.cortex.valid_time(t)
	}
	not data.cortex.valid_time(5)
	not data.cortex.valid_time(null)
}

test_time_ns if {
	data.cortex.time_ns("1970-01-01T00:00:01Z") == 1000000000
	data.cortex.time_or_date_ns("1970-01-02") == 86400000000000
	data.cortex.time_or_date_ns("1970-01-02T00:00:00Z") == 86400000000000
	not data.cortex.time_or_date_ns("1970-01-32")
}

# Outside 1678..2261 nanoseconds since the epoch overflow 64 bits and parsing would fail: such
# times are invalid (undefined), never an evaluation error.
test_times_outside_the_nanosecond_range_are_invalid if {
	data.cortex.valid_time("1678-01-01T00:00:00Z")
	data.cortex.valid_time("2261-12-31T23:59:59Z")
	every t in ["1677-12-31T23:59:59Z", "2262-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
		not data.cortex.valid_time(t)
		not data.cortex.time_ns(t)
		not data.cortex.time_or_date_ns(t)
	}
	data.cortex.time_or_date_ns("2261-12-31") > 0
	not data.cortex.time_or_date_ns("2262-01-01")
	not data.cortex.time_or_date_ns("1677-12-31")
}

test_now_comes_from_input if {
	data.cortex.now_ns == 1795644000000000000 with input as fx.verified
}

test_matches if {
	data.cortex.matches("cortex/*", "cortex/weather")
	not data.cortex.matches("cortex/*", "cortex/a/b")
	not data.cortex.matches("cortex/*", "acme/weather")
	data.cortex.matches("cortex/weather", "cortex/weather")
	not data.cortex.matches(["cortex/*"], "cortex/weather")
	not data.cortex.matches("cortex/*", null)
}

test_items if {
	data.cortex.items([1]) == [1]
	data.cortex.items({"a": 1}) == {"a": 1}
	data.cortex.items("abc") == []
	data.cortex.items(null) == []
}

test_fields if {
	data.cortex.str_field({"a": "x"}, "a") == "x"
	data.cortex.str_field({"a": 1}, "a") == ""
	data.cortex.str_field({}, "a") == ""
	data.cortex.num_field({"a": 3}, "a") == 3
	data.cortex.num_field({"a": "3"}, "a") == 0
	data.cortex.num_field({"a": -3.5}, "a") == -3.5
	data.cortex.num_field({"a": 9007199254740992}, "a") == 9007199254740992
	data.cortex.num_field({"a": 1e300}, "a") == 9007199254740992
	data.cortex.num_field({"a": -1e300}, "a") == 0 - 9007199254740992
}

test_clamp if {
	data.cortex._clamp(5) == 5
	data.cortex._clamp(1e300) == 9007199254740992
	data.cortex._clamp(-1e300) == 0 - 9007199254740992
}

test_conf_number_text if {
	days := data.cortex.conf_number_text(["verified", "min_days_in_production"]) with data.cortex_config as fx.default_config
	days == "30"
	data.cortex.conf_number_text(["verified", "nope"]) == "?"
}

test_missing_plugin_and_artifact if {
	inp := json.patch(fx.verified, [{"op": "remove", "path": "/plugin"}, {"op": "remove", "path": "/artifact"}])
	data.cortex.full_name == "" with input as inp
	data.cortex.digest_text == "the image" with input as inp
}

# (Evaluate under `with` into a variable and compare afterwards: regorus misjudges
# `rule == other.data.ref with input as ...`.)
test_manifest_views if {
	trust := data.cortex.manifest_trust with input as fx.verified
	trust == fx.manifest_document.trust
	data.cortex.manifest_trust == {} with input as fx.untrusted
	data.cortex.manifest_trust == {} with input as fx.with_(fx.verified, {"manifest": {"document": {"trust": "all"}}})
}
