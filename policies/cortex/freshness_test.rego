# Evidence freshness: a scan older than freshness.scan.max_age_days (default 7 days for Community
# and Verified), or one that does not say when it was made, does not count (SCAN_STALE) and
# next_tier asks for a rescan; the vulnerability database's age is checked only when configured.
package cortex.freshness_test

import data.cortex.fixtures_test as fx
import rego.v1

decide(inp) := fx.decide(inp)

scan_made_at(inp, t) := fx.with_evidence(inp, "scan", {"created_at": t})

reason(d, code) := r if {
	some r in d.reasons
	r.code == code
}

missing(d, code) := r if {
	some r in d.next_tier.missing
	r.code == code
}

# fx.now is 2026-11-25T22:00:00Z: seven days before is 2026-11-18T22:00:00Z.
test_scan_exactly_at_the_limit_counts if {
	d := decide(scan_made_at(fx.verified, "2026-11-18T22:00:00Z"))
	d.tier == "verified"
	not "SCAN_STALE" in fx.codes(d)
}

test_scan_one_second_past_the_limit_is_stale if {
	d := decide(scan_made_at(fx.verified, "2026-11-18T21:59:59Z"))
	d.tier == "experimental"
	d.action == "warn"
	"SCAN_STALE" in fx.codes(d)
	reason(d, "SCAN_STALE").message == sprintf("the scan of %s was made at 2026-11-18T21:59:59Z, more than 7 day(s) before 2026-11-25T22:00:00Z; a scan counts toward community for 7 day(s) (freshness.scan.max_age_days)", [fx.digest])
	reason(d, "SCAN_STALE").evidence == ["scan", "context.now"]
	d.next_tier.tier == "community"
	missing(d, "SCAN_STALE").message == sprintf("to reach community: rescan %s: a scan counts toward community for 7 day(s)", [fx.digest])
}

# One reason, not one per tier, when both limits are exceeded.
test_stale_scan_is_one_reason if {
	d := decide(scan_made_at(fx.verified, "2026-01-01T00:00:00Z"))
	count([r | some r in d.reasons; r.code == "SCAN_STALE"]) == 1
}

test_stale_scan_at_every_operation if {
	every op in ["verify", "publish", "install", "run"] {
		d := decide(fx.at(scan_made_at(fx.community, "2026-11-01T00:00:00Z"), op))
		d.tier == "experimental"
		"SCAN_STALE" in fx.codes(d)
	}
}

# A scan that does not say when it was made cannot be shown to be fresh.
test_scan_without_time_is_stale if {
	every inp in [
		json.patch(fx.verified, [{"op": "remove", "path": "/evidence/scan/created_at"}]),
		scan_made_at(fx.verified, null),
		scan_made_at(fx.verified, "yesterday"),
		scan_made_at(fx.verified, "2026-11-25 21:30:00"),
		scan_made_at(fx.verified, 1764100000),
	] {
		d := decide(inp)
		d.tier == "experimental"
		reason(d, "SCAN_STALE").message == sprintf("the scan of %s does not say when it was made, so it cannot be shown to be younger than 7 day(s) (freshness.scan.max_age_days.community)", [fx.digest])
	}
}

# A malformed clock shows nothing to be fresh.
test_malformed_now_makes_the_scan_stale if {
	d := decide(fx.with_(fx.community, {"context": {"now": "now"}}))
	"SCAN_STALE" in fx.codes(d)
	d.tier == "experimental"
}

# A scan made after context.now (a clock ahead) is not stale.
test_scan_from_the_future_is_not_stale if {
	d := decide(scan_made_at(fx.verified, "2026-11-26T09:00:00Z"))
	d.tier == "verified"
}

# No scan at all: SCAN_MISSING, not SCAN_STALE.
test_missing_scan_is_not_stale if {
	d := decide(fx.without(fx.community, "scan"))
	"SCAN_MISSING" in fx.codes(d)
	not "SCAN_STALE" in fx.codes(d)
}

# A stricter limit for Verified alone keeps Community and asks for a rescan for Verified.
test_stricter_verified_limit if {
	config := fx.config_with("/freshness/scan/max_age_days/verified", 3)
	d := fx.decide_with(scan_made_at(fx.verified, "2026-11-21T00:00:00Z"), config)
	d.tier == "community"
	d.next_tier.tier == "verified"
	missing(d, "SCAN_STALE").message == sprintf("to reach verified: rescan %s: a scan counts toward verified for 3 day(s)", [fx.digest])
	fx.decide_with(scan_made_at(fx.verified, "2026-11-23T00:00:00Z"), config).tier == "verified"
}

# No limit: a tier set to null, or a data set without `freshness`.
test_no_limit if {
	old := scan_made_at(fx.verified, "2020-01-01T00:00:00Z")
	fx.decide_with(old, fx.config_patched([
		{"op": "replace", "path": "/freshness/scan/max_age_days/community", "value": null},
		{"op": "replace", "path": "/freshness/scan/max_age_days/verified", "value": null},
	])).tier == "verified"
	fx.decide_with(old, fx.config_patched([{"op": "remove", "path": "/freshness"}])).tier == "verified"
	fx.decide_with(old, fx.config_with("/freshness/scan/max_age_days", {})).tier == "verified"
}

# The vulnerability database's age at scan time, when configured.
test_database_age if {
	config := fx.config_with("/freshness/scan/max_db_age_days", 1)
	# fx: db 2026-11-25T06:00:00Z, scan 2026-11-25T21:30:00Z
	fx.decide_with(fx.verified, config).tier == "verified"
	old_db := fx.with_evidence(fx.verified, "scan", {"db_updated_at": "2026-11-20T06:00:00Z"})
	d := fx.decide_with(old_db, config)
	d.tier == "experimental"
	reason(d, "SCAN_STALE").message == sprintf("the scan of %s used vulnerability data as of 2026-11-20T06:00:00Z, more than 1 day(s) before the scan (2026-11-25T21:30:00Z)", [fx.digest])
	missing(d, "SCAN_STALE").message == sprintf("to reach community: rescan %s with a vulnerability database updated within 1 day(s)", [fx.digest])
	no_db := fx.with_evidence(fx.verified, "scan", {"db_updated_at": null})
	fx.decide_with(no_db, config).tier == "experimental"
	# not configured (the default): not checked
	decide(old_db).tier == "verified"
}

test_invalid_freshness_data_blocks if {
	every config in [
		fx.config_with("/freshness/scan/max_age_days/community", "7"),
		fx.config_with("/freshness/scan/max_age_days/verified", -1),
		fx.config_with("/freshness/scan/max_age_days", [7]),
		fx.config_with("/freshness/scan", 7),
		fx.config_with("/freshness", "7 days"),
		fx.config_with("/freshness/scan/max_db_age_days", true),
	] {
		d := fx.decide_with(fx.verified, config)
		d.action == "block"
		"CONFIG_INVALID" in fx.codes(d)
	}
}

test_invalid_freshness_data_is_named if {
	d := fx.decide_with(fx.verified, fx.config_with("/freshness/scan/max_age_days/community", "7"))
	contains(reason(d, "CONFIG_INVALID").message, "freshness.scan.max_age_days.community must be a number of days (>= 0) or null")
	d2 := fx.decide_with(fx.verified, fx.config_with("/freshness/scan", 7))
	contains(reason(d2, "CONFIG_INVALID").message, "freshness, freshness.scan and freshness.scan.max_age_days must be objects")
	d3 := fx.decide_with(fx.verified, fx.config_with("/freshness/scan/max_db_age_days", true))
	contains(reason(d3, "CONFIG_INVALID").message, "freshness.scan.max_db_age_days must be a number of days (>= 0) or null")
}
