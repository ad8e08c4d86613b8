"""The custom vocabularies' word lists, one `<language code>.txt` per language the app uses.

Package data (setup.py ships `*.txt`): `vomage deploy vocabularies` and the local stack read
them from the installed package, and `domain/vocabulary.py` checks them against
Transcribe's rules in the unit tests, so a bad entry fails in CI rather than at deploy.
"""
