"""Train DLKUNet on Synapse multi-organ CT (8 organs + background) with the release's recipe.

    python Train_Synapse.py --model M --root_path ./datasets/Synapse/data --list_dir ./datasets/Synapse/list
    python Train_Synapse.py --model L --continue_train          # resume from ./result/Pth/last.pth
    torchrun --nproc_per_node 4 Train_Synapse.py --model S      # DDP, one process per GPU

Synapse has no validation split: pass ``--val_list`` naming a list of test-form volumes
(``case0001`` ...) with ``--val_interval N`` to score them every N epochs and keep ``best.pth``.
Outputs, log lines and resuming are described in ``dlkunet/training.py``; ``-h`` lists every flag.
"""

from Dataloader_Synapse import CLASS_NAMES, NUM_CLASSES, RandomGenerator, Synapse_dataset
from dlkunet import training
from dlkunet.errors import DLKUNetError, run_main


def get_args_parser():
    parser, groups = training.make_arg_parser(
        __doc__,
        root_path="./datasets/Synapse/data",
        list_dir="./datasets/Synapse/list",
        weight_decay=1e-5,
        loss_weights=(1.0, 1.0),
        log_path="./result/running.log",
    )
    groups["data"].add_argument(
        "--val_list",
        default=None,
        help="list file of test-form volumes to validate on (needs --val_interval)",
    )
    return parser


def main(args):
    if args.val_interval and not args.val_list:
        raise DLKUNetError("--val_interval needs --val_list on Synapse (it has no validation split)")
    size = (args.img_size, args.img_size)
    train_set = Synapse_dataset(args.root_path, args.list_dir, "train", transform=RandomGenerator(size))
    val_set = None
    if args.val_interval:
        val_set = Synapse_dataset(args.root_path, args.list_dir, "test", list_file=args.val_list)
    training.train(args, train_set, val_set, NUM_CLASSES, CLASS_NAMES)


if __name__ == "__main__":
    run_main(main, get_args_parser().parse_args())
