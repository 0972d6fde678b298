"""The copy lint: what must not go out, and what should be read twice, before scheduling.

Errors block scheduling outright: a template that does not compile or reaches outside its
plain-data context, copy that asserts an inference about the customer ("since you are
expecting"), a layout that lost its unsubscribe or preference-centre link. Warnings block until
the marketer acknowledges them: copy that tells customers they were watched ("we saw you
looking at", "you viewed"), and ``{{ first_name }}`` where the locale policy greets without it
(the name is empty there: use ``{{ greeting }}``, which follows the policy).

The phrase lists are regular expressions, case-insensitive, in the languages the app ships.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.template import TemplateSyntaxError
from django.utils.translation import gettext as _

from ..conf import app_settings
from ..exceptions import InvalidInput
from ..models import Campaign, FlowStep
from .render import layout_render
from .templates import mail_template_compile

ERROR, WARNING = "error", "warning"

# Asserting an inference about the customer: never, whatever the marketer says.
INFERENCE_PHRASES = (
    r"\bsince you(?:'re| are) (?:expecting|pregnant|ill|sick|single|divorced|getting married)",
    r"\b(?:congratulations on|for) your (?:pregnancy|baby|bump|diagnosis|divorce|weight loss)",
    r"\bwe (?:know|think|guess|figured|can tell) (?:that )?you(?:'re| are)\b",
    r"\bas (?:a|an) (?:new|expecting|expectant|single|diabetic) "
    r"(?:mum|mom|parent|mother|father|dad)",
    r"\bbased on your (?:health|medical|pregnancy|religion|ethnicity|sexuality)",
    r"\beftersom du (?:är|väntar) (?:gravid|barn|sjuk)",
    r"\bhamile (?:olduğunuz|olduğun) için",
)
# Telling the customer they were watched: read twice, acknowledge to go on.
SURVEILLANCE_PHRASES = (
    r"\bwe (?:saw|noticed|spotted|see|notice) (?:that )?you\b",
    r"\byou (?:recently )?(?:viewed|browsed|looked at|were looking at|checked out|searched for)\b",
    r"\bbased on your (?:browsing|recent (?:views|activity|searches)|activity)\b",
    r"\bwe(?:'ve| have) been watching\b",
    r"\bstill thinking about\b",
    r"\bvi (?:såg|märkte) att du\b",
    r"\bdu (?:tittade på|har tittat på|sökte efter)\b",
    r"\b(?:baktığınız|incelediğiniz|göz attığınız)\b",
)
FIRST_NAME_VARIABLE = re.compile(r"{{\s*first_name\b")
# A flow step's incentive code, and the only place it may appear: inside a test for it.
INCENTIVE_VARIABLE = re.compile(r"\bincentive_code\b")
GUARDED_INCENTIVE = re.compile(r"{%\s*if\s+incentive_code\s*%}.*?{%\s*endif\s*%}", re.S)


@dataclass(frozen=True)
class LintIssue:
    level: str  # ERROR or WARNING
    field: str  # the campaign field it is about
    message: str


class CampaignLintError(InvalidInput):
    """The campaign's copy has errors, or warnings nobody acknowledged. ``issues`` lists them."""

    def __init__(self, issues: list[LintIssue]):
        super().__init__("; ".join(issue.message for issue in issues), field=issues[0].field)
        self.issues = issues


@dataclass
class LintReport:
    issues: list[LintIssue] = field(default_factory=list)

    @property
    def errors(self) -> list[LintIssue]:
        return [issue for issue in self.issues if issue.level == ERROR]

    @property
    def warnings(self) -> list[LintIssue]:
        return [issue for issue in self.issues if issue.level == WARNING]

    def raise_if_blocking(self, *, acknowledged: bool) -> None:
        blocking = self.errors + ([] if acknowledged else self.warnings)
        if blocking:
            raise CampaignLintError(blocking)


def _matches(patterns: tuple[str, ...], text: str) -> list[str]:
    found = []
    for pattern in patterns:
        match = re.search(pattern, text, flags=re.IGNORECASE)
        if match:
            found.append(match.group(0))
    return found


def copy_lint(*, texts: dict[str, str]) -> list[LintIssue]:
    """The issues of some copy: {campaign field: its text}."""
    issues = []
    for name, text in texts.items():
        if not text:
            continue
        try:
            mail_template_compile(text)
        except TemplateSyntaxError as err:
            issues.append(LintIssue(ERROR, name, _("The template does not work: %s") % err))
        for phrase in _matches(INFERENCE_PHRASES, text):
            issues.append(
                LintIssue(
                    ERROR,
                    name,
                    _(
                        "“%(phrase)s” asserts something about the customer the shop can only "
                        "have guessed. Say what the products are, not what the customer is."
                    )
                    % {"phrase": phrase},
                )
            )
        for phrase in _matches(SURVEILLANCE_PHRASES, text):
            issues.append(
                LintIssue(
                    WARNING,
                    name,
                    _(
                        "“%(phrase)s” tells the customer they were watched. Show the picks "
                        "without saying where they came from."
                    )
                    % {"phrase": phrase},
                )
            )
        if FIRST_NAME_VARIABLE.search(text):
            issues.append(
                LintIssue(
                    WARNING,
                    name,
                    _(
                        "{{ first_name }} is empty for customers who are greeted without their "
                        "name (by their choice, or in Swedish, Danish, Norwegian, Finnish and "
                        "Icelandic by default). Use {{ greeting }}, which follows that policy."
                    ),
                )
            )
    return issues


def layout_lint() -> list[LintIssue]:
    """Errors when the shop's layout lost the unsubscribe or preference-centre link."""
    probe = {
        "unsubscribe_url": "https://probe.invalid/unsubscribe",
        "preference_centre_url": "https://probe.invalid/preferences",
    }
    html = layout_render(subject="", preheader="", body="", context=probe, topic_name="")
    return [
        LintIssue(
            ERROR,
            "body",
            _("The email layout %(template)s has no {{ %(variable)s }} link.")
            % {"template": app_settings.EMAIL_LAYOUT_TEMPLATE, "variable": variable},
        )
        for variable, url in probe.items()
        if url not in html
    ]


def campaign_lint(*, campaign: Campaign) -> LintReport:
    """Lint a campaign's subject, preheader and bodies, tailored and generic."""
    issues = copy_lint(
        texts={
            "subject": campaign.subject,
            "preheader": campaign.preheader,
            "body": campaign.body,
            "generic_subject": campaign.generic_subject,
            "generic_body": campaign.generic_body,
        }
    )
    issues += layout_lint()
    return LintReport(issues=issues)


def incentive_lint(*, texts: dict[str, str], asks: bool) -> list[LintIssue]:
    """A flow step's copy must not promise a code the shop may not give: the code only inside
    ``{% if incentive_code %}…{% endif %}``, and only when the step asks for one."""
    issues = []
    for name, text in texts.items():
        if INCENTIVE_VARIABLE.search(GUARDED_INCENTIVE.sub("", text or "")):
            issues.append(
                LintIssue(
                    ERROR,
                    name,
                    _(
                        "{{ incentive_code }} is used outside {% if incentive_code %}…"
                        "{% endif %}: customers would be promised a code the shop may not give."
                    ),
                )
            )
        elif INCENTIVE_VARIABLE.search(text or "") and not asks:
            issues.append(
                LintIssue(
                    WARNING,
                    name,
                    _(
                        "The copy shows an incentive code, but the step does not ask the shop "
                        "for one: it will never appear."
                    ),
                )
            )
    return issues


def step_lint(*, step: FlowStep) -> LintReport:
    """Lint a flow step's copy as a campaign's, and its use of the incentive code."""
    texts = {
        "subject": step.subject,
        "preheader": step.preheader,
        "body": step.body,
        "generic_subject": step.generic_subject,
        "generic_body": step.generic_body,
    }
    issues = copy_lint(texts=texts) + incentive_lint(texts=texts, asks=step.incentive)
    issues += layout_lint()
    return LintReport(issues=issues)
