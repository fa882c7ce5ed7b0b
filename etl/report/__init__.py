"""The management report: one offline HTML file per period, in English or Vietnamese."""
