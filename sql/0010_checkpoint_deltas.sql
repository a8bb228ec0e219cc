-- 0010_checkpoint_deltas.sql - checkpointdelta at O(edit): an update's working state is a base document
-- (extension_pulumi_state_checkpoints.raw at its seq) plus the accepted deltas after it, applied in seq
-- order; a delta stores only its edits. checkpoint_gen counts every change of an update's working state,
-- so a worker's copy of the document is known current when its generation is the row's.
CREATE TABLE extension_pulumi_state_checkpoint_deltas (
    update_id uuid   NOT NULL REFERENCES extension_pulumi_state_updates(id) ON DELETE CASCADE,
    seq       bigint NOT NULL,
    edits     text   NOT NULL,
    PRIMARY KEY (update_id, seq)
);
ALTER TABLE extension_pulumi_state_updates ADD COLUMN checkpoint_gen bigint NOT NULL DEFAULT 0;
