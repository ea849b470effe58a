"""What differs between the torch versions torch-sugar supports (README, "Supported torch versions").

TorchScript is deprecated upstream: from torch 2.14 every ``torch.jit.script``/``trace``/``save``/
``load`` call warns with a FutureWarning, which Python always shows (torch 2.13 and older raise a
DeprecationWarning, hidden outside ``__main__``). Where torch-sugar itself writes TorchScript
(``compare --save-models``) it is asked to, so the notice is noise there: a user's own calls still
see it.
"""

import functools
import warnings

# torch's notice, e.g. "`torch.jit.script` is deprecated. Please switch to `torch.compile` or
# `torch.export`." (the same text in torch 2.13 to 2.15; the category changed). pyproject.toml's
# pytest filterwarnings has the same pattern.
TORCHSCRIPT_DEPRECATION = r"`torch\.jit\.\w+` is deprecated"


def without_torchscript_deprecation(fn):
    """Decorates ``fn`` so that torch's TorchScript deprecation notices raised during a call are
    not shown (every other warning is)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with warnings.catch_warnings():
            for category in (FutureWarning, DeprecationWarning):
                warnings.filterwarnings("ignore", message=TORCHSCRIPT_DEPRECATION, category=category)
            return fn(*args, **kwargs)

    return wrapper
