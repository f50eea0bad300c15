package blockstore

import (
	"context"
	"errors"
	"slices"

	"github.com/stratuskit/stratus/store"
)

// recover settles what a crash left in flight (see Start).
func (s *Service) recover(ctx context.Context) error {
	tx := s.st.Snapshot()
	vols, err := store.List[Volume](nil, tx, volumeTable, store.IDIndex)
	if err != nil {
		return err
	}
	var errs []error
	crashed := errors.New("the service stopped before the operation finished")
	for v := range vols {
		switch v.Status {
		case StatusCreating, StatusDownloading:
			s.failCreate(v.ID, crashed)
		case StatusDeleting:
			s.spawn(ctx, "delete volume", v.ID, func(ctx context.Context) error { return s.finishDelete(ctx, v) })
		case StatusReserved, StatusAttaching, StatusDetaching, StatusInUse:
			errs = append(errs, s.settleAttachments(ctx, v))
		case StatusExtending, StatusBackingUp, StatusUploading:
			errs = append(errs, s.setStatus(ctx, v.ID, func(v *Volume) error {
				v.Status, v.PrevStatus, v.NewSizeGiB = v.PrevStatus, "", 0
				if v.Status == "" {
					v.Status = StatusAvailable
				}
				return nil
			}, "volume.recover"))
		case StatusRestoringBackup:
			errs = append(errs, s.setStatus(ctx, v.ID, func(v *Volume) error {
				v.Status, v.Fault = StatusErrorRestoring, crashed.Error()
				return nil
			}, "volume.recover"))
		}
	}
	snaps, err := store.List[Snapshot](nil, tx, snapshotTable, store.IDIndex)
	if err != nil {
		return err
	}
	for sn := range snaps {
		switch sn.Status {
		case SnapshotCreating:
			if v, err := store.Get[Volume](nil, tx, volumeTable, sn.VolumeID); err == nil {
				_ = s.backends[v.Backend].DeleteSnapshot(ctx, sn.ID)
			}
			errs = append(errs, s.setSnapshot(ctx, sn.ID, func(sn *Snapshot) { sn.Status, sn.QuotaReleased = SnapshotError, true }))
		case SnapshotDeleting:
			s.spawn(ctx, "delete snapshot", sn.ID, func(ctx context.Context) error { return s.finishSnapshotDelete(ctx, sn) })
		}
	}
	backups, err := store.List[Backup](nil, tx, backupTable, store.IDIndex)
	if err != nil {
		return err
	}
	bs, _ := s.backupSvc()
	for b := range backups {
		switch b.Status {
		case BackupCreating, BackupDeleting, BackupRestoring:
			errs = append(errs, s.st.Update(ctx, func(tx *store.Txn) error {
				cur, err := store.Get[Backup](nil, tx, backupTable, b.ID)
				if err != nil {
					return err
				}
				switch cur.Status {
				case BackupCreating:
					if bs != nil {
						s.deleteBackupObjects(ctx, bs, b.ID)
					}
					cur.Status, cur.FailReason, cur.QuotaReleased = BackupError, crashed.Error(), true
				case BackupDeleting:
					cur.Status = BackupError
				case BackupRestoring:
					cur.Status, cur.RestoreVolumeID = BackupAvailable, ""
				}
				return tx.Update(backupTable, cur)
			}))
		}
	}
	errs = append(errs, s.sweep(ctx))
	return errors.Join(errs...)
}

// sweep deletes the backend volumes that no record owns: what a crash
// left between a backend create and the failed record update, or a
// delete's record removal. A record is always written before its bytes,
// so a volume being made has one.
func (s *Service) sweep(ctx context.Context) error {
	tx := s.st.Snapshot()
	var errs []error
	for _, bc := range s.cfg.Backends {
		ids, err := bc.Backend.ListVolumes(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, id := range ids {
			if _, err := store.Get[Volume](nil, tx, volumeTable, id); err == nil {
				continue
			}
			s.log.Info("blockstore: deleting a volume no record owns", "backend", bc.Name, "volume", id)
			errs = append(errs, bc.Backend.DeleteVolume(ctx, id))
		}
	}
	return errors.Join(errs...)
}

// settleAttachments removes the attachments a crash left unfinished
// (reserved or attaching: the compute side retries from the start) and
// sets the volume's status from those that remain.
func (s *Service) settleAttachments(ctx context.Context, v *Volume) error {
	atts, err := attachmentsOf(s.st.Snapshot(), v.ID)
	if err != nil {
		return err
	}
	for _, a := range atts {
		if a.Status == AttachAttached {
			continue
		}
		if a.Connector != nil {
			if err := s.backends[v.Backend].Disconnect(ctx, v.ID, *a.Connector); err != nil {
				s.log.Warn("blockstore: disconnect of an unfinished attachment failed", "attachment", a.ID, "err", err)
			}
		}
		if err := s.removeAttachment(ctx, a.ID); err != nil {
			return err
		}
	}
	return s.setStatus(ctx, v.ID, func(v *Volume) error {
		atts, err := attachmentsOf(s.st.Snapshot(), v.ID)
		if err != nil {
			return err
		}
		if slices.Contains(attachable, v.Status) || v.Status == StatusDetaching {
			settleStatus(v, atts)
		}
		return nil
	}, "")
}
