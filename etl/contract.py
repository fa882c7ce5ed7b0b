"""CONTRACT.md as data: the landing datasets, their columns, types, enums, keys and partitions.

Every other module reads the contract from here, so a rule lives in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Lake types for each contract type. Timestamps are stored as local wall time of the company's time zone
# (METERFLOW_TIMEZONE), so that a calendar month is a plain date_trunc; a dataset with `instant` keeps
# that column's UTC instant as well (etl/timezone.py); decimals are exact.
DECIMAL = "DECIMAL(18,6)"
LAKE_TYPES = {
    "text": "VARCHAR",
    "enum": "VARCHAR",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
    "int": "BIGINT",
    "decimal": DECIMAL,
    "period": "VARCHAR",
    "boolean": "BOOLEAN",
}

CUSTOMER_CLASSES = ("RESIDENTIAL", "COMMERCIAL", "INDUSTRIAL", "PUBLIC_ADMIN", "AGRICULTURE", "OTHER")
COMPONENTS = (
    "BLOCK_1", "BLOCK_2", "BLOCK_3", "BLOCK_4", "BLOCK_5", "BLOCK_6",
    "NORMAL", "PEAK", "OFFPEAK", "FLAT",
)  # fmt: skip
CHANNELS = (
    "CASH_COUNTER", "CASH_COLLECTOR", "BANK_TRANSFER", "AUTO_DEBIT",
    "E_WALLET", "BANKING_APP", "CARD", "OTHER_CASHLESS",
)  # fmt: skip
CASH_CHANNELS = ("CASH_COUNTER", "CASH_COLLECTOR")
REQUEST_TYPES = ("NEW_CONNECTION", "BILLING", "OUTAGE", "METER", "CONTRACT_CHANGE", "COMPLAINT", "OTHER")
REQUEST_CHANNELS = ("HOTLINE", "WEB", "APP", "ZALO", "EMAIL", "COUNTER", "OTHER")
REQUEST_STATUSES = ("OPEN", "RESOLVED", "CANCELLED")
INSPECTION_RESULTS = ("NO_VIOLATION", "VIOLATION", "NOT_ACCESSIBLE")
READING_CHANNELS = ("ACTIVE_IMPORT", "ACTIVE_EXPORT", "REACTIVE_IMPORT", "REACTIVE_EXPORT")
VIOLATION_TYPES = ("BYPASS", "METER_TAMPERING", "ILLEGAL_CONNECTION", "WRONG_TARIFF_USE", "OTHER")


@dataclass(frozen=True)
class Column:
    """One contract column. `required`: a NULL is a contract breach; `optional`: the column may be absent."""

    name: str
    type: str
    required: bool = True
    optional: bool = False
    enum: tuple[str, ...] = ()
    default: str | None = None  # the value an empty field (or an absent optional column) stands for

    @property
    def lake_type(self) -> str:
        return LAKE_TYPES[self.type]


@dataclass(frozen=True)
class Rule:
    """A row rule beyond the column types, as CONTRACT.md words it, with what ingestion checks.

    `breaks`: SQL over the typed columns that is true when a row breaks the rule (NULL breaks nothing: a
    missing or mistyped value is reported by its own check); `code`: the quarantine rule code; `shows`:
    the columns a quarantine reason quotes.
    """

    text: str
    code: str
    breaks: str
    shows: tuple[str, ...]


def _range(column: str, text: str, breaks: str) -> Rule:
    """A rule on one column's range, e.g. `multiplier > 0`."""
    return Rule(text, "range", breaks, (column,))


@dataclass(frozen=True)
class Dataset:
    """A landing dataset: its folder, columns, key and how its raw layer is partitioned.

    partition_by: "snapshot" (reference: the snapshot date in the file name) or the name of the column
    whose local calendar month is the partition (`period=YYYY-MM`).
    """

    name: str
    folder: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    partition_by: str
    doc: str = ""
    extra_rules: tuple[Rule, ...] = field(default=())
    # a timestamp column whose UTC instant the raw layer keeps too, as `<instant>_utc`
    instant: str = ""

    @property
    def instant_column(self) -> dict[str, str]:
        """The raw layer's UTC instant column, {} when the dataset has none."""
        return {f"{self.instant}_utc": "TIMESTAMP"} if self.instant else {}

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns that must be present in the header."""
        return tuple(c.name for c in self.columns if not c.optional)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)

    @property
    def is_reference(self) -> bool:
        return self.partition_by == "snapshot"


def _c(
    name: str,
    type_: str,
    *,
    required: bool = True,
    optional: bool = False,
    enum: tuple[str, ...] = (),
    default: str | None = None,
) -> Column:
    return Column(name, type_, required=required, optional=optional, enum=enum, default=default)


DATASETS: dict[str, Dataset] = {
    d.name: d
    for d in (
        Dataset(
            "customers",
            "reference",
            (
                _c("customer_id", "text"),
                _c("customer_name", "text", required=False),
                _c("address", "text", required=False),
                _c("phone", "text", required=False),
                _c("customer_class", "enum", enum=CUSTOMER_CLASSES),
                _c("tariff_code", "text"),
                _c("region_code", "text"),
                _c("dt_id", "text"),
                _c("connected_on", "date"),
                _c("disconnected_on", "date", required=False),
            ),
            key=("customer_id",),
            partition_by="snapshot",
            doc="one row per customer",
        ),
        Dataset(
            "meters",
            "reference",
            (
                _c("meter_id", "text"),
                _c("role", "enum", enum=("CUSTOMER", "DT", "FEEDER", "BOUNDARY")),
                _c("customer_id", "text", required=False),
                _c("node_id", "text", required=False),
                _c("reading_mode", "enum", enum=("INTERVAL", "REGISTER")),
                _c("multiplier", "decimal"),
                _c("max_kw", "decimal", required=False, optional=True),
                _c("register_digits", "int"),
                _c("installed_on", "date"),
                _c("removed_on", "date", required=False),
            ),
            key=("meter_id",),
            partition_by="snapshot",
            doc="one row per meter installation",
            extra_rules=(
                Rule(
                    "customer_id required when role = CUSTOMER",
                    "required",
                    "role = 'CUSTOMER' and customer_id is null",
                    ("role", "customer_id"),
                ),
                Rule(
                    "node_id required when role is DT, FEEDER or BOUNDARY",
                    "required",
                    "role in ('DT', 'FEEDER', 'BOUNDARY') and node_id is null",
                    ("role", "node_id"),
                ),
                _range("multiplier", "multiplier > 0", "multiplier <= 0"),
                _range("max_kw", "max_kw > 0 when given", "max_kw <= 0"),
                _range(
                    "register_digits",
                    "register_digits between 1 and 12",
                    "register_digits not between 1 and 12",
                ),
            ),
        ),
        Dataset(
            "network",
            "reference",
            (
                _c("node_id", "text"),
                _c("node_type", "enum", enum=("BOUNDARY", "FEEDER", "DT")),
                _c("parent_id", "text", required=False),
                _c("region_code", "text"),
                _c("name", "text", required=False),
            ),
            key=("node_id",),
            partition_by="snapshot",
            doc="one row per network node",
            extra_rules=(
                Rule(
                    "parent_id required for FEEDER and DT, NULL for BOUNDARY",
                    "network_parent",
                    "(node_type in ('FEEDER', 'DT')) = (parent_id is null)",
                    ("node_type", "parent_id"),
                ),
            ),
        ),
        Dataset(
            "tariffs",
            "reference",
            (
                _c("tariff_code", "text"),
                _c("customer_class", "enum", enum=CUSTOMER_CLASSES),
                _c("component", "enum", enum=COMPONENTS),
                _c("block_from_kwh", "decimal", required=False),
                _c("block_to_kwh", "decimal", required=False),
                _c("price_vnd_per_kwh", "decimal"),
                _c("valid_from", "date"),
                _c("valid_to", "date", required=False),
            ),
            key=("tariff_code", "component", "valid_from"),
            partition_by="snapshot",
            doc="one row per tariff component and validity start",
            extra_rules=(_range("price_vnd_per_kwh", "price_vnd_per_kwh >= 0", "price_vnd_per_kwh < 0"),),
        ),
        Dataset(
            "plans",
            "reference",
            (
                _c("year", "int"),
                _c("region_code", "text"),
                _c("kpi", "enum", enum=("KWH_SOLD", "AVG_PRICE", "LOSS_RATE")),
                _c("target", "decimal"),
            ),
            key=("year", "region_code", "kpi"),
            partition_by="snapshot",
            doc="one row per year, region and KPI",
        ),
        Dataset(
            "regions",
            "reference",
            (_c("region_code", "text"), _c("region_name", "text")),
            key=("region_code",),
            partition_by="snapshot",
            doc="one row per region (optional, v2): the names of the district units, for reports",
        ),
        Dataset(
            "interval_reads",
            "readings",
            (
                _c("meter_id", "text"),
                _c("interval_start", "timestamp"),
                _c("interval_minutes", "int"),
                _c("kwh", "decimal"),
                _c("quality", "enum", required=False, enum=("A", "E")),
                _c(
                    "channel",
                    "enum",
                    required=False,
                    optional=True,
                    enum=READING_CHANNELS,
                    default="ACTIVE_IMPORT",
                ),
            ),
            key=("meter_id", "channel", "interval_start"),
            partition_by="interval_start",
            doc="one row per meter, channel and interval",
            extra_rules=(
                _range(
                    "interval_minutes",
                    "interval_minutes in (5, 10, 15, 30, 60)",
                    "interval_minutes not in (5, 10, 15, 30, 60)",
                ),
                Rule("kwh >= 0", "negative_kwh", "kwh < 0", ("kwh",)),
            ),
            instant="interval_start",
        ),
        Dataset(
            "register_reads",
            "readings",
            (
                _c("meter_id", "text"),
                _c("read_at", "timestamp"),
                _c("register", "enum", enum=("TOTAL", "NORMAL", "PEAK", "OFFPEAK")),
                _c("index_value", "decimal"),
                _c("read_type", "enum", enum=("REGULAR", "METER_OUT", "METER_IN", "SPECIAL")),
            ),
            key=("meter_id", "read_at", "register"),
            partition_by="read_at",
            doc="one row per meter, read time and register",
            extra_rules=(_range("index_value", "index_value >= 0", "index_value < 0"),),
        ),
        Dataset(
            "bill_lines",
            "billing",
            (
                _c("export_id", "text"),
                _c("export_version", "int"),
                _c("billing_period", "period"),
                _c("bill_id", "text"),
                _c("line_no", "int"),
                _c("customer_id", "text"),
                _c("bill_type", "enum", enum=("REGULAR", "ADJUSTMENT")),
                _c("period_start", "date"),
                _c("period_end", "date"),
                _c("tariff_code", "text"),
                _c("component", "enum", enum=COMPONENTS),
                _c("kwh", "decimal"),
                _c("unit_price_vnd", "decimal"),
                _c("amount_vnd", "decimal"),
                _c("vat_vnd", "decimal"),
                _c("issued_on", "date"),
            ),
            key=("export_id", "export_version", "bill_id", "line_no"),
            partition_by="billing_period",
            doc="one row per bill line of one export version",
            extra_rules=(
                Rule(
                    "kwh < 0 only on ADJUSTMENT lines",
                    "negative_kwh",
                    "kwh < 0 and bill_type <> 'ADJUSTMENT'",
                    ("kwh", "bill_type"),
                ),
                _range("export_version", "export_version >= 1", "export_version < 1"),
                Rule(
                    "period_end >= period_start",
                    "period_order",
                    "period_end < period_start",
                    ("period_start", "period_end"),
                ),
            ),
        ),
        Dataset(
            "payments",
            "payments",
            (
                _c("payment_id", "text"),
                _c("bill_id", "text"),
                _c("customer_id", "text"),
                _c("paid_at", "timestamp"),
                _c("amount_vnd", "decimal"),
                _c("channel", "enum", enum=CHANNELS),
            ),
            key=("payment_id",),
            partition_by="paid_at",
            doc="one row per payment",
        ),
        Dataset(
            "service_requests",
            "operations",
            (
                _c("request_id", "text"),
                _c("customer_id", "text", required=False),
                _c("region_code", "text"),
                _c("request_type", "enum", enum=REQUEST_TYPES),
                _c("channel", "enum", enum=REQUEST_CHANNELS),
                _c("received_at", "timestamp"),
                _c("due_at", "timestamp"),
                _c("status", "enum", enum=REQUEST_STATUSES),
                _c("closed_at", "timestamp", required=False),
                _c("escalated", "boolean"),
            ),
            key=("request_id",),
            partition_by="received_at",
            doc="one row per request and delivery; the most recently ingested row is the request's state",
            extra_rules=(
                Rule(
                    "due_at >= received_at", "time_order", "due_at < received_at", ("received_at", "due_at")
                ),
                Rule(
                    "closed_at >= received_at",
                    "time_order",
                    "closed_at < received_at",
                    ("received_at", "closed_at"),
                ),
                Rule(
                    "closed_at NULL exactly when status = OPEN",
                    "status_closed",
                    "(status = 'OPEN') = (closed_at is not null)",
                    ("status", "closed_at"),
                ),
            ),
        ),
        Dataset(
            "inspections",
            "operations",
            (
                _c("inspection_id", "text"),
                _c("customer_id", "text"),
                _c("region_code", "text"),
                _c("inspected_on", "date"),
                _c("result", "enum", enum=INSPECTION_RESULTS),
                _c("violation_type", "enum", required=False, enum=VIOLATION_TYPES),
                _c("recovered_kwh", "decimal", required=False),
                _c("recovered_vnd", "decimal", required=False),
            ),
            key=("inspection_id",),
            partition_by="inspected_on",
            doc="one row per inspection and delivery; the latest ingested row is the inspection's state",
            extra_rules=(
                Rule(
                    "violation_type required exactly when result = VIOLATION",
                    "violation_type",
                    "(result = 'VIOLATION') = (violation_type is null)",
                    ("result", "violation_type"),
                ),
                _range("recovered_kwh", "recovered_kwh >= 0", "recovered_kwh < 0"),
                _range("recovered_vnd", "recovered_vnd >= 0", "recovered_vnd < 0"),
                Rule(
                    "recovered amounts only on VIOLATION rows",
                    "violation_only",
                    "result <> 'VIOLATION' and (recovered_kwh is not null or recovered_vnd is not null)",
                    ("result", "recovered_kwh", "recovered_vnd"),
                ),
            ),
        ),
    )
}

FOLDERS: dict[str, tuple[str, ...]] = {}
for _d in DATASETS.values():
    FOLDERS.setdefault(_d.folder, ())
    FOLDERS[_d.folder] += (_d.name,)

# Lineage columns that every raw-layer row carries, after the contract columns.
LINEAGE_COLUMNS: dict[str, str] = {
    "_source_file": "VARCHAR",  # path relative to landing/, e.g. readings/interval_reads_20250901.csv.gz
    "_line_no": "BIGINT",  # physical line in the file; the header is line 1
    "_file_hash": "VARCHAR",  # sha256 of the file's bytes
    "_run_id": "VARCHAR",
    "_ingested_at": "TIMESTAMP",  # UTC
    "_ingest_seq": "BIGINT",  # order of ingestion over the whole lake; higher wins on a repeated key
    "_extra": "VARCHAR",  # unknown extra columns of the row as a JSON object, NULL when none
}

# Reference snapshots carry the snapshot date of their file name as well.
SNAPSHOT_COLUMN: dict[str, str] = {"_snapshot_date": "DATE"}


def dataset_for_file(folder: str, file_name: str) -> Dataset | None:
    """The dataset of `folder` whose name followed by `_` starts `file_name`, or None."""
    for name in FOLDERS.get(folder, ()):
        if file_name.startswith(name + "_"):
            return DATASETS[name]
    return None


# CONTRACT.md §6: the published marts and the columns analysts may rely on (more columns may come).
MART_COLUMNS: dict[str, tuple[str, ...]] = {
    "mart_kpi_monthly": (
        "period", "region_code", "kwh_sold", "revenue_vnd", "avg_price_vnd_per_kwh", "kwh_sold_ytd",
        "kwh_sold_ytd_yoy_pct", "plan_kwh_sold", "plan_attainment_pct", "avg_price_ytd_vnd_per_kwh",
        "avg_price_ytd_vs_plan_vnd", "avg_price_ytd_yoy_vnd", "kwh_received", "loss_rate_pct",
        "loss_rate_ytd_pct", "loss_rate_ytd_vs_plan_pts", "loss_rate_ytd_yoy_pts", "cashless_customer_pct",
        "cashless_amount_pct",
    ),
    "mart_sales_monthly": (
        "period", "region_code", "customer_class", "tariff_code", "kwh_sold", "revenue_vnd",
        "avg_price_vnd_per_kwh", "customers_billed",
    ),
    "mart_energy_balance_monthly": (
        "period", "node_id", "node_type", "region_code", "kwh_in", "kwh_billed", "loss_kwh", "loss_rate_pct",
        "estimated_share_pct",
    ),
    "mart_meter_monthly": (
        "period", "meter_id", "channel", "role", "unit", "expected_intervals", "actual_intervals",
        "upstream_estimated_intervals", "estimated_intervals", "missing_intervals", "recorded_qty",
        "validated_qty",
    ),
    "mart_service_monthly": (
        "period", "region_code", "requests_received", "requests_resolved", "resolved_on_time", "on_time_pct",
        "backlog_end", "overdue_end", "escalated", "requests_received_ytd", "on_time_ytd_pct",
    ),
    "mart_inspections_monthly": (
        "period", "region_code", "inspections", "violations", "hit_rate_pct", "recovered_kwh",
        "recovered_vnd", "inspections_ytd", "violations_ytd", "recovered_vnd_ytd",
    ),
    "mart_data_quality": (
        "run_id", "stage", "suite", "check_name", "description", "severity", "rows_checked", "rows_failed",
        "passed", "checked_at",
    ),
}  # fmt: skip
