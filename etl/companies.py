"""A corporation: a list of companies, each with its own data home and time zone, read from a TOML file.

    [corporation]
    code = "NPC"                      # the corporation's code: its rows in the roll-up carry it
    home = "corporation"              # where the corporation's marts file is published

    [[company]]
    code = "PCQT"                     # letters, digits and _; unique; DAG ids use it in lower case
    home = "pcqt"                     # the company's data home: landing, lake and marts as for one company
    timezone = "Asia/Ho_Chi_Minh"     # passed to the company's runs as METERFLOW_TIMEZONE

Relative homes are taken from the file's folder; a home may be an S3 URI, `s3://bucket/prefix`
(etl/objectstore.py). A new company is a new `[[company]]` entry: the DAG file
(dags/meterflow.py) reads the file named by METERFLOW_COMPANIES and generates one set of DAGs per company,
and the corporation's roll-up (etl.corporation) reads every company's published marts.

Only the standard library is imported here: the DAG processor parses the DAG file every few seconds.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from etl.errors import MeterflowError
from etl.settings import Settings, s3_uri

COMPANIES_ENV = "METERFLOW_COMPANIES"
TIMEZONE_ENV = "METERFLOW_TIMEZONE"
CODE = re.compile(r"[A-Z][A-Z0-9_]{1,15}")


class CompaniesError(MeterflowError):
    """The companies file is missing, is not TOML, or breaks a rule; the message names file and entry."""


@dataclass(frozen=True)
class Company:
    """One company: its code, its data home and the time zone its runs use."""

    code: str
    home: Path | str  # a local folder, or an S3 URI
    timezone: str

    @property
    def slug(self) -> str:
        """The code in lower case, as DAG ids and Asset names carry it."""
        return self.code.lower()

    def environment(self) -> dict[str, str]:
        """The environment variables of a run for this company."""
        return {"METERFLOW_HOME": str(self.home), TIMEZONE_ENV: self.timezone}

    def settings(self) -> Settings:
        """This company's settings: the environment's limits with the company's home and time zone."""
        saved = {name: os.environ.get(name) for name in self.environment()}
        os.environ.update(self.environment())
        try:
            return Settings.from_env()
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@dataclass(frozen=True)
class Corporation:
    """A corporation: its code, where its roll-up is published, and its companies in file order."""

    code: str
    home: Path | str
    companies: tuple[Company, ...]
    source: Path

    def company(self, code: str) -> Company:
        """The company of `code` (either case). Raises CompaniesError when the file lists none."""
        for company in self.companies:
            if company.code == code.upper():
                return company
        raise CompaniesError(f"{self.source}: no company with code {code!r}")

    def settings(self) -> Settings:
        """Settings of the corporation's own data home (its marts file and locks)."""
        return Settings.from_env(self.home)


def _text(entry: dict[str, object], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CompaniesError(f"{where}: `{key}` is required and must be a non-empty string")
    return value.strip()


def _code(entry: dict[str, object], where: str) -> str:
    code = _text(entry, "code", where)
    if not CODE.fullmatch(code):
        raise CompaniesError(
            f"{where}: code {code!r} must be 2 to 16 capital letters, digits or _, starting with a letter"
        )
    return code


def _home(entry: dict[str, object], where: str, base: Path) -> Path | str:
    text = _text(entry, "home", where)
    try:
        uri = s3_uri(text)
    except MeterflowError as exc:
        raise CompaniesError(f"{where}: {exc}") from None
    if uri:
        return uri
    home = Path(text).expanduser()
    return (home if home.is_absolute() else base / home).absolute()


def _timezone(entry: dict[str, object], where: str) -> str:
    zone = _text(entry, "timezone", where)
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise CompaniesError(f"{where}: timezone {zone!r} is not a known IANA time zone") from None
    return zone


def load_corporation(path: str | Path | None = None) -> Corporation:
    """Read the companies file (`path`, else METERFLOW_COMPANIES).

    Raises CompaniesError naming the file and the entry: no file, not TOML (with line and column), a
    missing field, a bad code or time zone, a code or home listed twice, or no company at all.
    """
    named = path or os.environ.get(COMPANIES_ENV)
    if not named:
        raise CompaniesError(f"no companies file: pass one or set {COMPANIES_ENV}")
    source = Path(named).expanduser().absolute()
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CompaniesError(f"{source}: cannot read the companies file: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise CompaniesError(f"{source}: not valid TOML: {exc}") from None
    unknown = set(data) - {"corporation", "company"}
    if unknown:
        raise CompaniesError(
            f"{source}: unknown table(s) {sorted(unknown)}; expected [corporation], [[company]]"
        )
    corp = data.get("corporation")
    if not isinstance(corp, dict):
        raise CompaniesError(f"{source}: a [corporation] table with code and home is required")
    base = source.parent
    corp_code = _code(corp, f"{source} [corporation]")
    corp_home = _home(corp, f"{source} [corporation]", base)
    entries = data.get("company")
    if not isinstance(entries, list) or not entries:
        raise CompaniesError(f"{source}: no [[company]] entry; a corporation lists at least one company")
    companies: list[Company] = []
    for number, entry in enumerate(entries, start=1):
        where = f"{source} [[company]] #{number}"
        extra = set(entry) - {"code", "home", "timezone"}
        if extra:
            raise CompaniesError(f"{where}: unknown key(s) {sorted(extra)}; expected code, home, timezone")
        company = Company(_code(entry, where), _home(entry, where, base), _timezone(entry, where))
        for other in companies:
            if other.code == company.code:
                raise CompaniesError(f"{where}: code {company.code} is already listed")
            if other.home == company.home:
                raise CompaniesError(f"{where}: home {company.home} is already the home of {other.code}")
        if company.code == corp_code:
            raise CompaniesError(f"{where}: code {company.code} is the corporation's own code")
        if company.home == corp_home:
            raise CompaniesError(f"{where}: home {company.home} is the corporation's own home")
        companies.append(company)
    return Corporation(code=corp_code, home=corp_home, companies=tuple(companies), source=source)
