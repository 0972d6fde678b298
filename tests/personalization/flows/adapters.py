from personalization.adapter import DefaultAdapter


class GenerousAdapter(DefaultAdapter):
    """A shop that gives a code for every step that asks, rising with the step."""

    def incentive_code(self, *, profile, flow, step, key):
        return f"{flow.upper()}-{step * 5}"
