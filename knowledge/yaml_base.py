"""The base of the YAML loaders that read the word lists, the screening lists and the FAQ.

libyaml's parser where PyYAML was built with it: it reads severity.yaml about ten times faster than the
pure-Python one, which counts at start-up (before the first push is answered) and on every reload. Both
are the safe loader; line numbers in error messages come from either.
"""

import yaml

FastSafeLoader: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
