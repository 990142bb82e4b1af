"""The security baseline's forms: which check to fix on a node (or all of them), confirmed by
its name."""

from django import forms

from clusters import baseline


class BaselineFixForm(forms.Form):
    """A fix changes a server: the DBA types the server's name to confirm (as for other
    destructive actions). Only checks of the node's service that have a fix are accepted."""

    check = forms.ChoiceField()
    confirm = forms.CharField(label="Type the server's name to confirm", max_length=64)

    def __init__(self, node, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.node = node
        self.fields["check"].choices = [
            (c.key, c.title) for c in baseline.checks_for(node) if c.fix is not None
        ]

    def clean_confirm(self) -> str:
        value = self.cleaned_data["confirm"].strip()
        if value != self.node.name:
            raise forms.ValidationError(
                f"Nothing was changed: type the server's name, {self.node.name}, to confirm."
            )
        return value


class BaselineFixAllForm(forms.Form):
    """Fix every failing check that has a fix: only the server's name, typed to confirm."""

    confirm = forms.CharField(label="Type the server's name to confirm", max_length=64)

    def __init__(self, node, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.node = node

    clean_confirm = BaselineFixForm.clean_confirm
