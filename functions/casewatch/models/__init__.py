"""Wire models of Cases events, the Cases API and the timers, and the views casewatch builds."""
