# Evidence freshness: a scan counts toward a tier only while it is young enough.
#
# A clean scan says nothing about vulnerabilities published since. cortex_config.freshness.scan
# .max_age_days maps a tier (community, verified) to the largest age, in days, of a scan that
# still counts toward it: context.now minus scan.created_at (when the report was made). A scan
# older than that, or one that does not say when it was made (no valid created_at), or judged
# against a malformed context.now, does not count: SCAN_STALE, whose fix is a rescan. A tier
# that is not listed, or null, sets no limit for that tier; a data set without `freshness`
# (written before it existed) sets none at all. A created_at later than context.now (a clock
# ahead) is not stale.
#
# freshness.scan.max_db_age_days (optional, null or absent: not checked) bounds the age of the
# vulnerability database the scan used: scan.created_at minus scan.db_updated_at. A scan
# without db_updated_at (a report does not say which database it used) fails it.
package cortex

import rego.v1

_ns_per_day := 86400000000000

# Whether the data sets a limit in days for tier t (a number), and that limit. Every use is
# guarded by _scan_limited(t): rules, not `_ := value` bindings, which regorus' compiled mode
# does not treat as a condition.
_scan_limited(t) if is_number(conf(["freshness", "scan", "max_age_days", t]))

_scan_max_age(t) := conf(["freshness", "scan", "max_age_days", t])

# Fresh for t: created_at and context.now are valid times and the scan is no older than t's limit.
_scan_fresh_for(t) if {
	_scan_limited(t)
	age_ns := now_ns - time_ns(scan.created_at)
	age_ns <= _scan_max_age(t) * _ns_per_day
}

# Stale for t: a present scan, a limit for t, and not shown to be fresh for t.
_scan_stale(t) if {
	scan_present
	_scan_limited(t)
	not _scan_fresh_for(t)
}

_scan_db_limited if is_number(conf(["freshness", "scan", "max_db_age_days"]))

_scan_db_fresh if {
	_scan_db_limited
	age_ns := time_ns(scan.created_at) - time_ns(scan.db_updated_at)
	age_ns <= conf(["freshness", "scan", "max_db_age_days"]) * _ns_per_day
}

_scan_db_stale if {
	scan_present
	_scan_db_limited
	not _scan_db_fresh
}

community_failures contains check(
	"SCAN_STALE",
	_scan_stale_message("community"),
	_scan_stale_fix("community"),
	["scan", "context.now"],
) if {
	_scan_stale("community")
}

# A stricter limit for Verified alone (one reason, not two, when both limits are exceeded).
verified_failures contains check(
	"SCAN_STALE",
	_scan_stale_message("verified"),
	_scan_stale_fix("verified"),
	["scan", "context.now"],
) if {
	_scan_stale("verified")
	not _scan_stale("community")
}

community_failures contains check(
	"SCAN_STALE",
	sprintf(
		"the scan of %s used vulnerability data as of %s, more than %s day(s) before the scan (%s)",
		[digest_text, _scan_time_text("db_updated_at"), conf_number_text(["freshness", "scan", "max_db_age_days"]), _scan_time_text("created_at")],
	),
	sprintf("rescan %s with a vulnerability database updated within %s day(s)", [digest_text, conf_number_text(["freshness", "scan", "max_db_age_days"])]),
	["scan"],
) if {
	_scan_db_stale
}

_scan_stale_message(t) := sprintf(
	"the scan of %s was made at %s, more than %s day(s) before %s; a scan counts toward %s for %s day(s) (freshness.scan.max_age_days)",
	[digest_text, _scan_time_text("created_at"), conf_number_text(["freshness", "scan", "max_age_days", t]), _now_text_or_unknown, t, conf_number_text(["freshness", "scan", "max_age_days", t])],
) if {
	valid_time(scan.created_at)
} else := sprintf(
	"the scan of %s does not say when it was made, so it cannot be shown to be younger than %s day(s) (freshness.scan.max_age_days.%s)",
	[digest_text, conf_number_text(["freshness", "scan", "max_age_days", t]), t],
)

_scan_stale_fix(t) := sprintf(
	"rescan %s: a scan counts toward %s for %s day(s)",
	[digest_text, t, conf_number_text(["freshness", "scan", "max_age_days", t])],
)

_scan_time_text(key) := short(scan[key]) if str_field(scan, key) != "" else := "an unknown time"

_now_text_or_unknown := short(now_text) if now_text != "" else := "an unknown time"
