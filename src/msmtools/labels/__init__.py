"""Hand labels on a random sample of records: what `msm label` writes and `msm compare --gold` reads.

A judge (the AM grader, the gate, a reasoning tagger, value-eval's answer reader) decides every record;
a person decides a random sample of them. With the two, `compare --gold` estimates the true rate per
arm with an interval that carries the judge's error (prediction-powered inference).

    measures  -- what can be labelled on which records, the judge's decision, the text a person reads
    sample    -- the stratified, seeded, resumable sample and the label records
    app       -- the terminal UI (textual), keyboard only
"""
