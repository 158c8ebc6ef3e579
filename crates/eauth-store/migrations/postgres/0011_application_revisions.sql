-- Every change to an application makes a new revision (Store::change_application). A write made
-- on behalf of a copy of the application, kept by a process to spare a read per API call,
-- checks in its own statement that the copy's revision is still the application's: a rotated
-- key or a deactivation stops such writes at the change's commit, as a fresh read would.
ALTER TABLE applications ADD COLUMN revision BIGINT NOT NULL DEFAULT 0;
