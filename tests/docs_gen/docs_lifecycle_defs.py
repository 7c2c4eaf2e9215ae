"""Definitions for `integrations lint -m`: the good landscape plus a system whose API version ends 2027-09-30."""

import docs_landscapes as L

defs = L.with_system(L.System("mail", "Mailer", "mailer", ["team:marketing"],
                              support={"support_ends": "2027-09-30", "support_source": "https://x.example/v",
                                       "support_warning_days": 90}), "campaign", "crm")
